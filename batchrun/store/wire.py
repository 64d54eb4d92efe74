"""The result line: the one place its JSONL wire form is written and read back."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from batchrun.records import Fallback, Result, Usage, _int

# Output line ids: a random prefix per process and a counter; unique without a syscall per line.
_RUN_ID = os.urandom(8).hex()

_SEQ = itertools.count()


def result_line(r: Result, finished_at: float | None = None, more: dict[str, Any] | None = None) -> bytes:
    """The JSONL output line for a result (OpenAI Batch output shape plus `batchrun`);
    `finished_at` is when the line is written (epoch seconds); `more` adds to `batchrun`."""
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
        "started_at": None if r.started_at is None else round(r.started_at, 3),
        "finished_at": None if finished_at is None else round(finished_at, 3),
    }
    if r.unmetered:
        extra["unmetered"] = True
    if r.possibly_billed:
        extra["possibly_billed"] = r.possibly_billed
    if r.route is not None:
        extra["route"] = r.route
        extra["provider"] = r.provider
    if r.chunks:
        extra["chunks"] = r.chunks
    if more:
        extra.update(more)
    if r.fallbacks:
        extra["fallbacks"] = [{"from": f.from_model, "reason": f.reason, "attempts": f.attempts,
                               **({"rate_limited": f.rate_limited} if f.rate_limited else {})}
                              for f in r.fallbacks]
    doc = {
        "id": f"batch_req_{_RUN_ID}{next(_SEQ):08x}",
        "custom_id": r.key,
        "response": response,
        "error": None if r.ok else {"code": r.error_code, "message": r.error_message},
        "batchrun": extra,
    }
    return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)  # no copy to add the newline


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
        model=ex.get("model") if isinstance(ex.get("model"), str) else None,
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
        cost_usd=_float(ex.get("cost_usd")),  # a hand-edited line with odd values counts as unpriced
        rate_limited=int(ex.get("rate_limited") or 0),
        fallbacks=tuple(
            Fallback(str(f.get("from")), str(f.get("reason")), int(f.get("attempts") or 0),
                     int(f.get("rate_limited") or 0))
            for f in ex.get("fallbacks") or ()
        ),
        started_at=_float(ex.get("started_at")),
        unmetered=ex.get("unmetered") is True,
        possibly_billed=_int(ex.get("possibly_billed")),
        route=ex.get("route") if isinstance(ex.get("route"), str) else None,
        provider=ex.get("provider") if isinstance(ex.get("provider"), str) else None,
        chunks=int(ex.get("chunks") or 0),
    )


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(frozen=True, slots=True)
class ResultLine:
    """One complete line of a results file; `result` is None for a blank or foreign line."""

    raw: bytes
    result: Result | None


def read_result_lines(f: BinaryIO) -> Iterator[ResultLine]:
    """The complete lines of a results file from its current position: the one reader of result
    lines (resume, `--retry-failed`, `report`). Stops before a torn last line (no newline)."""
    for raw in f:
        if not raw.endswith(b"\n"):
            return
        result = None
        if raw.strip():
            try:
                result = parse_result_line(raw)
            except (ValueError, TypeError, AttributeError):
                pass
        yield ResultLine(raw, result)

