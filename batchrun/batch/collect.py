"""A finished batch's output and error files, read back as ordinary Results (the Batch API's
line shape already is ours), costed at the model's batch price. Streamed line by line; only the
shard's index (key -> input line, at most --batch-size entries) is held.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from batchrun.account.prices import Price
from batchrun.batch.plan import Shard
from batchrun.batch.shard import index_lines
from batchrun.input.endpoints import ENDPOINTS
from batchrun.records import Result, Usage


def load_index(path: Path) -> dict[str, int]:
    """key -> input line of a shard's requests."""
    return {key: line for line, key in index_lines(path)}


def results_of(path: Path, shard: Shard, index: dict[str, int], price: Price | None,
               started_at: float | None) -> Iterator[Result]:
    """The Results in a downloaded output or error file; lines naming no request of the shard
    are skipped (they cannot be placed)."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            line = index.get(str(doc.get("custom_id")))
            if line is None:
                continue
            yield result_of(doc, line, shard, price, started_at)


def result_of(doc: dict[str, Any], line: int, shard: Shard, price: Price | None,
              started_at: float | None) -> Result:
    """One provider output line as our Result."""
    endpoint = ENDPOINTS[shard.endpoint]
    resp = doc.get("response") if isinstance(doc.get("response"), dict) else None
    status = resp.get("status_code") if resp else None
    body = resp.get("body") if resp else None
    request_id = resp.get("request_id") if resp else None
    base: dict[str, Any] = {"key": str(doc["custom_id"]), "line": line, "model": shard.model, "attempts": 1,
            "request_id": request_id if isinstance(request_id, str) else None,
            "status_code": status if isinstance(status, int) else None, "body": body, "started_at": started_at}
    err = doc.get("error")
    if status == 200 and not err and endpoint.is_answer(body):
        usage = endpoint.usage(body)
        if usage is None:
            return Result(**base, unmetered=True)
        return Result(**base, usage=usage, cost_usd=None if price is None else price.cost(usage))
    code, message = _error(err, body, status)
    return Result(**base, error_code=code, error_message=message, usage=_usage(endpoint.usage(body)))


def _usage(u: Usage | None) -> Usage:
    return u if u is not None else Usage()


def _error(err: Any, body: Any, status: Any) -> tuple[str, str]:
    if isinstance(err, dict) and err.get("code"):
        return str(err["code"]), str(err.get("message") or "")
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict):
        return str(inner.get("code") or inner.get("type") or f"http_{status}"), str(inner.get("message") or "")
    if status == 200:
        return "bad_response", "the batch answered 200 with a body that is not an answer"
    return f"http_{status}", "the batch gave no answer for this request"


def validation_errors(batch: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """A batch that failed validation: its errors by 1-based line of the input file."""
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    out: dict[int, tuple[str, str]] = {}
    for e in data if isinstance(data, list) else ():
        if isinstance(e, dict) and isinstance(e.get("line"), int):
            out.setdefault(e["line"], (str(e.get("code") or "invalid_request"), str(e.get("message") or "")))
    return out


def batch_message(batch: dict[str, Any]) -> str:
    """The first error a failed batch reports, in words."""
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return f"{data[0].get('code')}: {data[0].get('message')}"
    return f"the batch ended {batch.get('status')}"
