"""The values that travel the pipeline, and the one place their JSONL wire form is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One valid input line, shaped into a request body for its endpoint."""

    key: str
    line: int
    model: str
    body: dict[str, Any]
    est_input_tokens: int
    max_output_tokens: int
    endpoint: str = "chat"  # a name in input.endpoints.ENDPOINTS
    route_value: str | None = None  # the line's [route] field, when one is configured
    own_model: bool = True  # the model is the record's own, not --model's


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a response reported. input_tokens includes cached_tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


def _int(v: Any) -> int:
    return v if type(v) is int and v > 0 else 0


@dataclass(frozen=True, slots=True)
class Fallback:
    """Why a record was answered by another model than its own."""

    from_model: str
    reason: str
    attempts: int = 0  # sent to from_model before falling back
    rate_limited: int = 0  # of those attempts, the ones answered 429


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one record: exactly one output line."""

    key: str
    line: int
    model: str | None
    status_code: int | None = None
    request_id: str | None = None
    body: Any = None
    raw_body: bytes | None = None  # a JSON body as received; written as is instead of `body`
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    rate_limited: int = 0
    fallbacks: tuple[Fallback, ...] = ()
    started_at: float | None = None  # epoch seconds: the first attempt's start
    unmetered: bool = False  # answered without usage: its tokens and cost are unknown
    route: str | None = None  # why this model: record, default, route:FIELD=VALUE, route:long, canary
    provider: str | None = None  # the configured provider that answered (None: the default endpoint)
    possibly_billed: int = 0  # attempts answered 200 with no readable answer (retried; may be billed)
    chunks: int = 0  # --chunk-long: the record was answered in this many pieces (0: whole)

    @property
    def ok(self) -> bool:
        """A record succeeded iff it has no error."""
        return self.error_code is None

    @property
    def invalid(self) -> bool:
        """The input line itself was bad; nothing was sent."""
        return self.error_code == INVALID_INPUT

INVALID_INPUT = "invalid_input"


def invalid_result(line: int, reason: str) -> Result:
    """The error result for a bad input line (the README: custom_id `line-N`)."""
    return Result(
        key=f"line-{line}",
        line=line,
        model=None,
        error_code=INVALID_INPUT,
        error_message=f"line {line}: {reason}",
    )

