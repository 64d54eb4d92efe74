"""The simulator's Files and Batches API (OpenAI's shapes): upload, create, get, list, cancel,
file content. Files live on disk in a temporary directory, never in memory; a batch moves
validating -> in_progress -> finalizing -> completed (or failed, expired, cancelled), each step
`batch_step_s` long, and its lines are answered by `batch_work` in a thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import BodyPartReader, web

from batchrun.sim.answers import error_body
from batchrun.sim.batch_api.batch_capacity import BatchCapacity
from batchrun.sim.batch_api.batch_work import ORG, Progress, answer_file, enqueued, queue_refusal, validate
from batchrun.sim.config import SimConfig
from batchrun.sim.stats import SimStats


class Host(Protocol):
    """What the service needs of its Simulator: its config and the stats it adds to."""

    config: SimConfig
    stats: SimStats

JSON = "application/json"
_TERMINAL = ("completed", "failed", "expired", "cancelled")


def _json(status: int, doc: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type=JSON)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, body=error_body(status, code, message), content_type=JSON)


class BatchService:
    """Files and batches for one Simulator; `sim` gives its config, stats and key check."""

    def __init__(self, sim: Host, authorized: Callable[[web.Request], bool]) -> None:
        self.sim = sim
        self.authorized = authorized
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}  # in creation order
        self._progress: dict[str, Progress] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._expired_once: set[str] = set()
        lps = sim.config.batch_lines_per_s
        self._capacity = BatchCapacity(lps).take if lps else None  # provider-wide, across all batches
        # Each batch answers on a thread of its own: in the default pool (6 threads on 2 cores) a
        # batch queued behind others could not start, so not end, and a cancel waited for it.
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sim-batch")
        self._queued: dict[str, tuple[str, int]] = {}  # batch id -> (model, tokens) it holds of its queue
        self._created: collections.deque[float] = collections.deque()  # monotonic, for batches_per_hour

    def register(self, app: web.Application) -> None:
        """Add the routes, under /v1 and bare, as the chat route is."""
        for prefix in ("/v1", ""):
            app.router.add_post(prefix + "/files", self.upload)
            app.router.add_get(prefix + "/files/{id}", self.get_file)
            app.router.add_get(prefix + "/files/{id}/content", self.file_content)
            app.router.add_post(prefix + "/batches", self.create)
            app.router.add_get(prefix + "/batches", self.list)
            app.router.add_get(prefix + "/batches/{id}", self.get)
            app.router.add_post(prefix + "/batches/{id}/cancel", self.cancel)
        app.on_cleanup.append(self._cleanup)

    @property
    def dir(self) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="batchrun-sim-")
        return Path(self._dir.name)

    async def _cleanup(self, app: web.Application) -> None:
        for t in list(self._tasks):
            t.cancel()
        for p in self._progress.values():
            p.cancel.set()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{os.urandom(6).hex()}{next(self._ids):04d}"

    def _add_file(self, path: Path, filename: str, purpose: str) -> dict[str, Any]:
        fid = path.name
        info = {"id": fid, "object": "file", "bytes": path.stat().st_size, "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[fid] = info
        return info

    async def upload(self, request: web.Request) -> web.Response:
        """POST /files: multipart with `purpose` and `file`, streamed to disk."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError):
            return _error(400, "invalid_request", "Expected a multipart/form-data body.")
        purpose, path, filename = None, None, "upload.jsonl"
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "purpose":
                purpose = await part.text()
            elif part.name == "file":
                filename = part.filename or filename
                path = self.dir / self._new_id("file")
                with open(path, "wb") as f:  # noqa: ASYNC230 (a loopback test server: a local write)
                    while chunk := await part.read_chunk(1 << 16):
                        f.write(chunk)
        if path is None or purpose is None:
            return _error(400, "missing_required_parameter", "Both 'file' and 'purpose' are required.")
        self.sim.stats.files_uploaded += 1
        return _json(200, self._add_file(path, filename, purpose))

    async def get_file(self, request: web.Request) -> web.Response:
        """GET /files/{id}."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        info = self.files.get(request.match_info["id"])
        return _json(200, info) if info else _error(404, "not_found", "No such File object.")

    async def file_content(self, request: web.Request) -> web.StreamResponse:
        """GET /files/{id}/content, streamed from disk."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        fid = request.match_info["id"]
        if fid not in self.files:
            return _error(404, "not_found", "No such File object.")
        return web.FileResponse(self.dir / fid, headers={"Content-Type": "application/jsonl"})

    async def create(self, request: web.Request) -> web.Response:
        """POST /batches."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            return _error(400, "invalid_json", "We could not parse the JSON body.")
        fid, endpoint = doc.get("input_file_id"), doc.get("endpoint")
        if fid not in self.files:
            return _error(400, "invalid_request", f"Invalid input_file_id {fid!r}.")
        if doc.get("completion_window") != "24h":
            return _error(400, "invalid_request", "completion_window must be 24h.")
        if (wait := self._over_hourly()) is not None:
            self.sim.stats.batches_rate_limited += 1
            return web.Response(status=429, content_type=JSON, headers={"retry-after": f"{wait:.3f}"},
                                body=error_body(429, "rate_limit_exceeded", "Rate limit reached for batches in "
                                                f"organization {ORG}: {self.sim.config.batches_per_hour} per "
                                                f"{self.sim.config.batch_hour_s:g} s. Please try again later."))
        now = int(time.time())
        bid = self._new_id("batch")
        batch = {"id": bid, "object": "batch", "endpoint": endpoint, "errors": None, "input_file_id": fid,
                 "completion_window": "24h", "status": "validating", "output_file_id": None,
                 "error_file_id": None, "created_at": now, "in_progress_at": None, "expires_at": now + 86400,
                 "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
                 "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": doc.get("metadata") if isinstance(doc.get("metadata"), dict) else None}
        self.batches[bid] = batch
        self._progress[bid] = Progress(expired_once=self._expired_once, capacity=self._capacity)
        self.sim.stats.batches_created += 1
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _json(200, batch)

    def _over_hourly(self) -> float | None:
        """Seconds until another batch may be created, None when one may be now (and it is counted)."""
        c, now = self.sim.config, time.monotonic()
        if c.batches_per_hour is None:
            return None
        while self._created and self._created[0] <= now - c.batch_hour_s:
            self._created.popleft()
        if len(self._created) >= c.batches_per_hour:
            return self._created[0] + c.batch_hour_s - now
        self._created.append(now)
        return None

    def _queue_check(self, batch: dict[str, Any], model: str, tokens: int) -> list[dict[str, Any]]:
        """Hold the batch's tokens in its model's queue, or OpenAI's refusal when they do not fit."""
        c = self.sim.config
        limit = c.batch_queue_models.get(model, c.batch_queue_tokens)
        held = sum(t for m, t in self._queued.values() if m == model)
        if limit is not None and held + tokens > limit:
            self.sim.stats.batches_refused_queue += 1
            return [queue_refusal(model, limit)]
        self._queued[batch["id"]] = (model, tokens)
        return []

    def _view(self, batch: dict[str, Any]) -> dict[str, Any]:
        p = self._progress[batch["id"]]
        if batch["status"] in ("in_progress", "finalizing", "cancelling"):
            batch["request_counts"] = {"total": p.total, "completed": p.completed, "failed": p.failed}
        return batch

    async def get(self, request: web.Request) -> web.Response:
        """GET /batches/{id}."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        batch = self.batches.get(request.match_info["id"])
        return _json(200, self._view(batch)) if batch else _error(404, "not_found", "No such Batch object.")

    async def list(self, request: web.Request) -> web.Response:
        """GET /batches?limit=&after=: newest first, paged by the last id seen."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return _error(400, "invalid_request", "limit must be a whole number.")
        ids = list(reversed(self.batches))
        after = request.query.get("after")
        if after in self.batches:
            ids = ids[ids.index(after) + 1:]
        page = [self._view(self.batches[i]) for i in ids[:limit]]
        return _json(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                           "last_id": page[-1]["id"] if page else None, "has_more": len(ids) > limit})

    async def cancel(self, request: web.Request) -> web.Response:
        """POST /batches/{id}/cancel: cancelling until the work stops, then cancelled."""
        if not self.authorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, "not_found", "No such Batch object.")
        if batch["status"] in _TERMINAL:
            return _error(409, "invalid_state", f"Cannot cancel a batch that is {batch['status']}.")
        batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
        self._progress[batch["id"]].cancel.set()
        return _json(200, batch)

    async def _run(self, batch: dict[str, Any]) -> None:
        """The batch's life, one state after another."""
        c, p = self.sim.config, self._progress[batch["id"]]
        src = self.dir / batch["input_file_id"]
        models = c.models if c.strict_models else None
        await asyncio.sleep(c.batch_step_s)
        lines, errors = await asyncio.to_thread(validate, src, batch["endpoint"], models, c.fail_batch_validation)
        if p.cancel.is_set():
            return self._end(batch, "cancelled")
        if not errors:
            errors = self._queue_check(batch, *await asyncio.to_thread(enqueued, src, batch["endpoint"]))
        if errors:
            batch["errors"] = {"object": "list", "data": errors}
            return self._end(batch, "failed")
        p.total = lines
        batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
        out, err = self.dir / self._new_id("file"), self.dir / self._new_id("file")
        work = partial(answer_file, src, out, err, batch["endpoint"], c.batch_expire_share, int(time.time()), p)
        loop = asyncio.get_running_loop()
        await asyncio.gather(asyncio.sleep(c.batch_step_s), loop.run_in_executor(self._pool, work))
        st = self.sim.stats
        st.batch_billed += p.completed
        st.batch_prompt_tokens += p.prompt_tokens
        st.batch_completion_tokens += p.completion_tokens
        if not p.cancel.is_set():
            batch["status"], batch["finalizing_at"] = "finalizing", int(time.time())
            await asyncio.sleep(c.batch_step_s)
        for path, key in ((out, "output_file_id"), (err, "error_file_id")):
            if path.stat().st_size:
                batch[key] = self._add_file(path, path.name + ".jsonl", "batch_output")["id"]
        self._view(batch)
        batch["request_counts"]["failed"] = p.failed + p.expired
        if p.cancel.is_set():
            return self._end(batch, "cancelled")
        self._end(batch, "expired" if p.expired else "completed")

    def _end(self, batch: dict[str, Any], status: str) -> None:
        self._queued.pop(batch["id"], None)  # a finished batch frees its queue
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())
