"""The provider's Files and Batches API: upload a file (multipart, streamed from disk), create,
get, list and cancel batches, download a file (streamed to disk). Errors come out as the same
RequestErrors the live path uses; transient ones are retried by the live path's own policy
(send/retry.py): backoff with jitter for failures, and a 429's retry-after (a batches-per-hour
limit, say) waited out, as a 429 never counts as a failed attempt there either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

from batchrun.errors import BadResponse, RateLimited, RetryableError, WaitTooLong, WriteFailed
from batchrun.secret import ApiKey
from batchrun.send.client import classify
from batchrun.send.retry import RetryPolicy, next_delay
from batchrun.send.session import map_aiohttp_errors

T = TypeVar("T")
MODEL_HEADER = "x-litellm-model"  # what routes a file and a batch at LiteLLM's proxy
ATTEMPTS = 5  # per call, for transient failures (5xx, resets, timeouts); a 429 is not one
MAX_429S = 50  # per call: a server that only ever says "wait" is given up on (the job stops, exit 75)
# An hour: OpenAI's batches-per-hour window; a longer wait stops the job to be run again later.
BATCH_POLICY = RetryPolicy(ATTEMPTS, max_retry_after_s=3600.0)


async def retrying(policy: RetryPolicy, call: Callable[[], Awaitable[T]], rng: random.Random) -> T:
    """`call` until it answers, under the live path's retry policy: failures back off and are
    counted against the policy's attempts; a 429 waits out its retry-after (past --max-wait, the
    job stops), counted apart."""
    failures = waits = 0
    while True:
        try:
            return await call()
        except RetryableError as e:
            if isinstance(e, RateLimited):
                limit = policy.max_wait_s
                if e.retry_after is not None and limit is not None and e.retry_after > limit:
                    raise WaitTooLong(f"the Batch API asks to wait {e.retry_after:g}s, longer than --max-wait "
                                      f"{limit:g}s") from None
                waits += 1
                delay = next_delay(policy, 1, e, rng) if waits < MAX_429S else None
            else:
                failures += 1
                delay = next_delay(policy, failures, e, rng)
            if delay is None:
                raise
            await asyncio.sleep(delay)


class BatchApi:
    """One base URL's /files and /batches, with one key."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, key: ApiKey, timeout_s: float,
                 policy: RetryPolicy = BATCH_POLICY, headers: Mapping[str, str] | None = None) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.policy = policy
        self.rng = random.Random()
        self._timeout = aiohttp.ClientTimeout(sock_read=timeout_s, sock_connect=timeout_s)
        secret = key.reveal()
        self._secret = secret
        self._auth = {**(headers or {}), **({"Authorization": "Bearer " + secret} if secret else {})}

    def _for(self, model: str | None) -> dict[str, str]:
        """The headers of a call for one shard's model. A gateway (LiteLLM's proxy) does not route
        /files and /batches by the model in the lines but by `x-litellm-model` (encoded into the
        file and batch ids it returns); an API that is no gateway ignores the header. A provider's
        own `headers` table says otherwise where it names it."""
        if model is None or any(k.lower() == MODEL_HEADER for k in self._auth):
            return self._auth
        return {**self._auth, MODEL_HEADER: model}

    def _refusal(self, status: int, raw: bytes, headers: Any) -> Exception:
        """The classified error of a non-200 answer; a key the server echoes never reaches a message."""
        if self._secret:
            raw = raw.replace(self._secret.encode(), b"<redacted>")
        parsed = _loads(raw)
        return classify(status, parsed if parsed is not None else raw[:500].decode("utf-8", "replace"), headers)

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(self.policy, call, self.rng)

    async def _json(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                    model: str | None = None) -> Any:
        """One JSON call: the parsed answer, or the classified RequestError."""
        auth = self._for(model)
        with map_aiohttp_errors(self.timeout_s):
            async with self.session.request(
                method, self.base + path, timeout=self._timeout, params=params,
                headers=auth if body is None else {**auth, "Content-Type": "application/json"},
                data=None if body is None else orjson.dumps(body),
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        if status != 200:
            raise self._refusal(status, raw, headers)
        parsed = _loads(raw)
        if not isinstance(parsed, dict):
            raise BadResponse(f"{method} {path}: the answer is not a JSON object", status=status)
        return parsed

    async def upload(self, path: Path, filename: str, model: str | None = None) -> dict[str, Any]:
        """POST /files, purpose=batch, the file streamed from disk; `model` routes it at a gateway."""

        async def once() -> Any:
            with open(path, "rb") as f:  # noqa: ASYNC230 (aiohttp reads it in chunks as it sends)
                form = aiohttp.FormData()
                form.add_field("purpose", "batch")
                form.add_field("file", f, filename=filename, content_type="application/jsonl")
                with map_aiohttp_errors(self.timeout_s):
                    async with self.session.post(self.base + "/files", data=form, headers=self._for(model),
                                                 timeout=self._timeout) as resp:
                        raw = await resp.read()
                        status, headers = resp.status, resp.headers
            if status != 200:
                raise self._refusal(status, raw, headers)
            parsed = _loads(raw)
            if not isinstance(parsed, dict) or not isinstance(parsed.get("id"), str):
                raise BadResponse("POST /files: the answer names no file id", status=status)
            return parsed

        return await self._retrying(once)

    async def create(self, file_id: str, endpoint_url: str, metadata: dict[str, str],
                     model: str | None = None) -> dict[str, Any]:
        """POST /batches, completion window 24h. Not retried here: a lost answer may hide a batch
        that was made, so the caller looks for it by its metadata first."""
        doc = await self._json("POST", "/batches", {"input_file_id": file_id, "endpoint": endpoint_url,
                                                    "completion_window": "24h", "metadata": metadata}, model=model)
        if not isinstance(doc.get("id"), str):
            raise BadResponse("POST /batches: the answer names no batch id")
        return dict(doc)

    async def get(self, batch_id: str) -> dict[str, Any]:
        """GET /batches/{id}."""
        return dict(await self._retrying(lambda: self._json("GET", f"/batches/{batch_id}")))

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        """POST /batches/{id}/cancel."""
        return dict(await self._retrying(lambda: self._json("POST", f"/batches/{batch_id}/cancel")))

    async def batches(self, max_pages: int = 50, model: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """GET /batches, newest first, page after page (at most `max_pages` of 100); `model` lists a
        gateway's batches for that model, with the ids its create call gave."""
        after: str | None = None
        for _ in range(max_pages):
            params = {"limit": "100"} | ({"after": after} if after else {})
            page = await self._retrying(
                lambda p=params: self._json("GET", "/batches", params=p, model=model))  # type: ignore[misc]
            data = page.get("data")
            if not isinstance(data, list):
                raise BadResponse("GET /batches: the answer holds no list")
            for b in data:
                if isinstance(b, dict):
                    yield b
            if not page.get("has_more") or not data:
                return
            after = page.get("last_id") or data[-1].get("id")

    async def download(self, file_id: str, dest: Path) -> None:
        """GET /files/{id}/content into `dest`, streamed, replaced whole (a temp file, then rename)."""

        async def once() -> None:
            tmp = dest.with_name(dest.name + ".part")
            with map_aiohttp_errors(self.timeout_s):
                async with self.session.get(self.base + f"/files/{file_id}/content", headers=self._auth,
                                            timeout=self._timeout) as resp:
                    if resp.status != 200:
                        raise self._refusal(resp.status, await resp.read(), resp.headers)
                    with _local(tmp, "open"):
                        f = open(tmp, "wb")  # noqa: ASYNC230, SIM115 (chunks to a local file; closed below)
                    with f:  # only the local calls are ours: a reset of the stream is the provider's
                        async for chunk in resp.content.iter_chunked(1 << 16):
                            with _local(tmp, "write"):
                                f.write(chunk)
                        with _local(tmp, "write"):
                            f.flush()
                            os.fsync(f.fileno())
            with _local(dest, "replace"):
                os.replace(tmp, dest)

        await self._retrying(once)


@contextlib.contextmanager
def _local(path: Path, doing: str) -> Iterator[None]:
    """One local file call inside a download: its OSError (disk full, permissions) is ours, exit
    74, not the provider's connection failing (which map_aiohttp_errors would make it)."""
    try:
        yield
    except OSError as e:
        raise WriteFailed(f"cannot {doing} {path}: {e.strerror or e}; nothing was lost: free space "
                          "first") from None


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
