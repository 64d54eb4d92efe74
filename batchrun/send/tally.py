"""What one record has been through across its models, and the failure Result it makes."""

from __future__ import annotations

from dataclasses import dataclass, field

from batchrun.errors import RequestError
from batchrun.records import Fallback, Record, Result


@dataclass(slots=True)
class Tally:
    """What one record has been through so far, across models."""

    attempts: int = 0
    rate_limited: int = 0
    fallbacks: list[Fallback] = field(default_factory=list)
    started_at: float | None = None
    possibly_billed: int = 0  # 200s with no readable answer: retried, but the server may bill them


def failure(rec: Record, model: str, tally: Tally, err: RequestError | None, code: str, message: str) -> Result:
    """The record's failure Result on `model`, carrying what it went through."""
    return Result(key=rec.key, line=rec.line, model=model, status_code=err.status if err else None,
                  body=err.body if err else None, error_code=code, error_message=message,
                  attempts=tally.attempts, rate_limited=tally.rate_limited,
                  fallbacks=tuple(tally.fallbacks), started_at=tally.started_at,
                  possibly_billed=tally.possibly_billed)
