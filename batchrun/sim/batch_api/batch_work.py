"""What the simulator does with a batch's input file: validate it, then answer its lines into an
output file and an error file, streaming from disk to disk (a thread runs it: it is file work).

The answers are the live simulator's own (`endpoints`), for every endpoint it serves.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrun.sim.answers import error_body
from batchrun.sim.endpoints import SIM_ENDPOINTS, BadAsk, SimEndpoint

# The endpoints a simulated batch answers, by the `url` of its lines: the live endpoints' own
# request reading and answer bodies, so a batch line and the same request sent live get the same
# usage; only the price differs, and that is the client's business.
ENDPOINTS_BY_URL: dict[str, SimEndpoint] = {"/v1" + e.path: e for e in SIM_ENDPOINTS}


EXPIRED = "This request could not be executed before the completion window expired."


@dataclass
class Progress:
    """A batch's request counts, written by the worker thread and read by GET /batches/{id}."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    expired: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    # custom_ids that expired once already (shared by all batches of a simulator): the same line
    # submitted again is answered, as a provider past its busy hour would
    expired_once: set[str] = field(default_factory=set)
    capacity: Callable[[threading.Event], bool] | None = None  # sim/batch_capacity: False once cancelled


def validate(
    path: Path, endpoint: str, models: tuple[str, ...] | None, fail_all: bool
) -> tuple[int, list[dict[str, Any]]]:
    """(lines, errors): OpenAI's validation of a batch input file, one error per bad line, line
    numbers 1-based. `models`: the served models when unknown ones are refused."""
    errors: list[dict[str, Any]] = []
    n = 0
    seen: set[str] = set()
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):  # noqa: B007 (n is the count after the loop)
            problem = _line_problem(raw, endpoint, models, seen)
            if problem is None and fail_all:
                problem = ("invalid_request", "Simulated validation failure for this line.")
            if problem is not None and len(errors) < 1000:
                errors.append({"code": problem[0], "message": problem[1], "param": None, "line": n})
    if n == 0:
        errors.append({"code": "empty_file", "message": "The batch input file is empty.", "param": None,
                       "line": None})
    return n, errors


def _line_problem(raw: bytes, endpoint: str, models: tuple[str, ...] | None,
                  seen: set[str]) -> tuple[str, str] | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "invalid_json_line", "This line is not parseable as valid JSON."
    if not isinstance(doc, dict) or not isinstance(doc.get("body"), dict):
        return "invalid_request", "The line has no request body."
    cid = doc.get("custom_id")
    if not isinstance(cid, str) or not cid:
        return "missing_required_parameter", "The line is missing custom_id."
    if cid in seen:
        return "duplicate_custom_id", f"The custom_id {cid!r} is used more than once."
    seen.add(cid)
    if doc.get("url") != endpoint:
        return "mismatched_endpoint", f"The line's url {doc.get('url')!r} is not the batch's {endpoint}."
    model = doc["body"].get("model")
    if models is not None and model not in models:
        return "model_not_found", f"The model `{model}` does not exist or you do not have access to it."
    return None


def expires(custom_id: str, share: float) -> bool:
    """Whether a line is one of the share left unanswered the first time it is sent."""
    return share > 0 and hashlib.blake2b(custom_id.encode(), digest_size=2).digest()[0] < share * 256


def answer_file(src: Path, out: Path, err: Path, endpoint: str, expire_share: float,
                created: int, progress: Progress) -> None:
    """Answer every line of `src` into `out` (answers) and `err` (errors, expired lines)."""
    served = ENDPOINTS_BY_URL.get(endpoint)
    with open(src, "rb") as fin, open(out, "wb") as fout, open(err, "wb") as ferr:
        for n, raw in enumerate(fin):
            if progress.cancel.is_set() or (progress.capacity is not None and not progress.capacity(progress.cancel)):
                return
            doc = orjson.loads(raw)
            cid = doc["custom_id"]
            rid = f"batch_req_{n:08x}{hashlib.blake2b(cid.encode(), digest_size=4).hexdigest()}"
            if expires(cid, expire_share) and cid not in progress.expired_once:
                progress.expired_once.add(cid)
                progress.expired += 1
                ferr.write(orjson.dumps({"id": rid, "custom_id": cid, "response": None,
                                         "error": {"code": "batch_expired", "message": EXPIRED}}) + b"\n")
                continue
            try:
                if served is None:
                    raise BadAsk(f"The simulator does not answer {endpoint}.")
                ask = served.read(doc["body"])
            except BadAsk as e:  # the API's 400 for this request: an error-file line, not billed
                progress.failed += 1
                body = orjson.Fragment(error_body(400, "invalid_request_error", str(e)))
                ferr.write(orjson.dumps({"id": rid, "custom_id": cid, "error": None,
                                         "response": {"status_code": 400, "request_id": rid, "body": body}})
                           + b"\n")
                continue
            data = served.answer(ask, doc["body"], 0, created)
            fout.write(orjson.dumps({"id": rid, "custom_id": cid, "error": None, "response": {
                "status_code": 200, "request_id": rid, "body": orjson.Fragment(data)}}) + b"\n")
            progress.prompt_tokens += ask.prompt_tokens
            progress.completion_tokens += ask.completion_tokens
            progress.completed += 1


ORG = "org-batchrunsim"


def enqueued(path: Path, endpoint: str) -> tuple[str, int]:
    """(model, prompt tokens) of a batch input file, counted as its lines would be billed: what
    the batch holds of its model's enqueued-token limit."""
    served = ENDPOINTS_BY_URL.get(endpoint)
    model, tokens = "", 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                body = orjson.loads(raw)["body"]
                model = model or str(body.get("model") or "")
                tokens += served.read(body).prompt_tokens if served is not None else 0
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, BadAsk):
                continue
    return model, tokens


def queue_refusal(model: str, limit: int) -> dict[str, Any]:
    """OpenAI's validation error for a batch past its model's enqueued-token limit, in its words."""
    return {"code": "token_limit_exceeded", "param": None, "line": None,
            "message": f"Enqueued token limit reached for {model} in organization {ORG}. Limit: {limit:,} "
                       "enqueued tokens. Please try again once some in_progress batches have been completed."}
