"""What one record has been through across its models, and the failure Result it makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from batchrun.errors import BatchrunError, RequestError
from batchrun.records import Fallback, Record, Result


@dataclass(slots=True)
class Tally:
    """What one record has been through so far, across models."""

    attempts: int = 0
    rate_limited: int = 0
    fallbacks: list[Fallback] = field(default_factory=list)
    started_at: float | None = None
    possibly_billed: int = 0  # 200s with no readable answer: retried, but the server may bill them
    hidden: int = 0  # upstream attempts a gateway retried on its own (x-litellm-attempted-retries)
    route: str | None = None  # routed: why its model (the Result says so, and which provider answered)


def failure(rec: Record, model: str, tally: Tally, err: RequestError | None, code: str, message: str,
            provider: str | None = None) -> Result:
    """The record's failure Result on `model` (at `provider`), carrying what it went through."""
    return Result(key=rec.key, line=rec.line, model=model, status_code=err.status if err else None,
                  body=err.body if err else None, error_code=code, error_message=message,
                  attempts=tally.attempts, rate_limited=tally.rate_limited,
                  fallbacks=tuple(tally.fallbacks), started_at=tally.started_at,
                  possibly_billed=tally.possibly_billed, route=tally.route,
                  provider=provider if tally.route is not None else None)


_E = TypeVar("_E", bound=BatchrunError)


@dataclass(slots=True)
class Abandoned:
    """Requests sent for records that no line holds: a clean stop let the record go, or a refused
    key stopped the job (the next run sends it again), or a refused shadow was skipped. By model:
    [requests, of which 429s]. The job adds them to its figures, so a provider's `requests` is
    every request its server received."""

    by_model: dict[str, list[int]] = field(default_factory=dict)

    def note(self, model: str, tally: Tally, stop: _E) -> _E:
        """Count what the record's tally sent on each model; returns `stop`, to raise."""
        moved = sum(fb.attempts for fb in tally.fallbacks)
        limited = sum(fb.rate_limited for fb in tally.fallbacks)
        for name, attempts, rate_limited in ((model, tally.attempts - moved, tally.rate_limited - limited),
                                             *((fb.from_model, fb.attempts, fb.rate_limited)
                                               for fb in tally.fallbacks)):
            if attempts:
                row = self.by_model.setdefault(name, [0, 0])
                row[0] += attempts
                row[1] += rate_limited
        return stop
