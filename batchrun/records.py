"""The values that travel the pipeline, and the one place their JSONL wire form is built."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Record:
    """One valid input line, shaped into a chat-completions request body."""

    key: str
    line: int
    model: str
    body: dict[str, Any]
    est_input_tokens: int
    max_output_tokens: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a response reported. input_tokens includes cached_tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_body(cls, body: Any) -> Usage:
        """Read OpenAI's `usage` object; missing or odd fields count as zero."""
        usage = body.get("usage") if type(body) is dict else None
        if type(usage) is not dict:
            return cls()
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if type(details) is dict else 0
        return cls(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), _int(cached))


def _int(v: Any) -> int:
    return v if type(v) is int and v > 0 else 0


@dataclass(frozen=True, slots=True)
class Fallback:
    """Why a record was answered by another model than its own."""

    from_model: str
    reason: str


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
    """The error result for a bad input line (SPEC: custom_id `line-N`)."""
    return Result(
        key=f"line-{line}",
        line=line,
        model=None,
        error_code=INVALID_INPUT,
        error_message=f"line {line}: {reason}",
    )


# Output line ids: a random prefix per process and a counter; unique without a syscall per line.
_RUN_ID = os.urandom(8).hex()
_SEQ = itertools.count()


def result_line(r: Result) -> bytes:
    """The JSONL output line for a result (OpenAI Batch output shape plus `batchrun`)."""
    response = None
    if r.status_code is not None:
        body = r.body
        if r.raw_body is not None:
            raw = r.raw_body
            if b"\n" in raw or b"\r" in raw:  # only whitespace there (it parsed): keep one line
                raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
            body = orjson.Fragment(raw)
        response = {"status_code": r.status_code, "request_id": r.request_id, "body": body}
    extra: dict[str, Any] = {
        "model": r.model,
        "attempts": r.attempts,
        "latency_ms": int(r.latency_ms * 10 + 0.5) / 10,
        "input_tokens": r.usage.input_tokens,
        "output_tokens": r.usage.output_tokens,
        "cached_tokens": r.usage.cached_tokens,
        "cost_usd": r.cost_usd,
        "line": r.line,
        "rate_limited": r.rate_limited,
    }
    if r.fallbacks:
        extra["fallbacks"] = [{"from": f.from_model, "reason": f.reason} for f in r.fallbacks]
    doc = {
        "id": f"batch_req_{_RUN_ID}{next(_SEQ):08x}",
        "custom_id": r.key,
        "response": response,
        "error": None if r.ok else {"code": r.error_code, "message": r.error_message},
        "batchrun": extra,
    }
    return orjson.dumps(doc) + b"\n"


def parse_result_line(raw: bytes) -> Result:
    """Rebuild a Result from one output line (resume, `report`). Raises ValueError if foreign."""
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("batchrun"), dict):
        raise ValueError("not a batchrun result line")
    ex = doc["batchrun"]
    err = doc.get("error") or {}
    resp = doc.get("response") or {}
    return Result(
        key=str(doc.get("custom_id")),
        line=int(ex.get("line") or 0),
        model=ex.get("model"),
        status_code=resp.get("status_code"),
        request_id=resp.get("request_id"),
        body=None,  # not needed for accounting; keeps resume memory flat
        error_code=err.get("code") if err else None,
        error_message=err.get("message") if err else None,
        attempts=int(ex.get("attempts") or 0),
        latency_ms=float(ex.get("latency_ms") or 0.0),
        usage=Usage(
            _int(ex.get("input_tokens")),
            _int(ex.get("output_tokens")),
            _int(ex.get("cached_tokens")),
        ),
        cost_usd=ex.get("cost_usd"),
        rate_limited=int(ex.get("rate_limited") or 0),
        fallbacks=tuple(
            Fallback(str(f.get("from")), str(f.get("reason"))) for f in ex.get("fallbacks") or ()
        ),
    )
