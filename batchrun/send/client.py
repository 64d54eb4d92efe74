"""One HTTP exchange with an OpenAI-compatible API, over `send/http1` (or a `Transport` in tests).

Status classes follow OpenAI's error-code guide
(https://platform.openai.com/docs/guides/error-codes): 429 and 5xx are worth retrying, 401/403
mean the key is wrong, 404 that the model is not served, and a 400 whose error code is
`context_length_exceeded` that the prompt is too long for the model.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from batchrun import __version__
from batchrun.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    ContextTooLong,
    ModelNotFound,
    QuotaExhausted,
    RateLimited,
    RequestError,
    ServerError,
    Timeout,
    UnreadableAnswer,
)
from batchrun.input.endpoints import CHAT, Endpoint
from batchrun.secret import ApiKey
from batchrun.send import gateway
from batchrun.send.http1.pool import Http1Pool, open_pool
from batchrun.send.retry import parse_retry_after
from batchrun.send.transport import Request, Transport, reply_headers


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful exchange."""

    status: int
    body: dict[str, Any]
    raw: bytes  # the body as received, for the output line
    headers: Any
    request_id: str | None
    latency_ms: float
    gateway: bool = False  # it came through an LLM gateway (send/gateway.py reads its headers)

USER_AGENT = f"batchrun/{__version__}"


def make_pool(base_url: str, concurrency: int) -> contextlib.AbstractAsyncContextManager[Http1Pool]:
    """The live requests' connections to one base URL's origin (send/http1), closed on the way out."""
    return open_pool(base_url, concurrency, USER_AGENT)


def timed_out(timeout_s: float) -> Timeout:
    """A transport's timeout in words."""
    return Timeout(f"no answer: nothing received for {timeout_s:g} s, or the attempt ran past --max-request-time")


class Client:
    """Sends requests to one base URL's endpoints with one key."""

    def __init__(
        self, pool: Http1Pool | None, base_url: str, key: ApiKey, timeout_s: float,
        max_request_s: float | None = None, headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None, transport: Transport | None = None,
    ) -> None:
        self.pool = pool
        self.transport = transport  # in place of the pool: an in-process MockTransport in tests
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        # --timeout bounds the wait for the next byte, as the openai SDK's read timeout does: a
        # server that queues a request and sends keep-alive bytes (DeepSeek's empty lines) is not
        # timed out, so the request is never resent while it may still be answered;
        # --max-request-time bounds the whole attempt.
        self._max_request_s = max_request_s
        self._read_timeout: float | None = timeout_s
        self._heads: dict[tuple[str, str], bytes] = {}  # (method, path): the request's fixed head
        self._user_extra = dict(extra_body or {})  # the provider's extra_body, merged into each body
        self._extra = self._user_extra
        self.gateway = False  # set once an answer shows an LLM gateway (send/gateway.py)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        secret = key.reveal()
        self._secret = secret
        if secret:
            self._headers["Authorization"] = "Bearer " + secret

    async def send_once(self, body: dict[str, Any], endpoint: Endpoint = CHAT) -> Answer:
        """POST one request; return the Answer or raise the RequestError that classifies it."""
        data = orjson.dumps({**body, **self._extra} if self._extra else body)
        start = time.perf_counter()
        if self.transport is not None:
            raw, status, headers = await self._carry("POST", self.base_url + endpoint.path, data)
        else:
            raw, status, headers = await self._exchange("POST", endpoint.path, data)
        latency_ms = (time.perf_counter() - start) * 1000.0
        request_id = headers.get("x-request-id")
        if request_id is None or self.gateway:
            if not self.gateway and gateway.is_gateway(headers):
                self._found_gateway()
            request_id = gateway.request_id(headers)
        try:
            parsed: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if status == 200:
            if not endpoint.is_answer(parsed):
                # no answer came back to keep, so it is retried like a 5xx; the attempt may have
                # been billed, which the summary counts (possibly_billed)
                shown = self._scrub(_short(raw, 200))
                raise UnreadableAnswer(
                    f"the server answered 200 ({headers.get('Content-Type', 'no content type')}) with a body "
                    f"that is not a {endpoint.name} answer (it may have been billed): {shown!r}",
                    status=status,
                    body=self._scrub(_short(raw) if parsed is None else parsed),
                    headers=headers,
                )
            return Answer(status, parsed, raw, headers, request_id, latency_ms, self.gateway)
        raise classify(status, self._scrub(parsed if parsed is not None else _short(raw)), headers, endpoint.path)

    def _found_gateway(self) -> None:
        """The answers come through an LLM gateway: ask it not to retry (unless the provider's
        extra_body says otherwise), so every upstream failure and 429 is seen here; and wait for
        its answer as long as the attempt may run (--max-request-time), not --timeout between
        bytes: a gateway holds a request without a byte while it waits out the upstream's limit,
        and a request resent then would be answered, and billed, twice."""
        self.gateway = True
        self._extra = {**gateway.NO_GATEWAY_RETRIES, **self._user_extra}
        self._read_timeout = None

    async def _exchange(self, method: str, path: str, data: bytes) -> tuple[bytes, int, Any]:
        """One exchange over the pool (a failure raises ConnectionLost, BadResponse or Timeout)."""
        assert self.pool is not None
        head = self._heads.get((method, path))
        if head is None:
            head = self._heads[method, path] = self.pool.head(method, path, self._headers)
        try:
            return await self.pool.request(head, data, self.timeout_s, self._read_timeout, self._max_request_s)
        except TimeoutError:
            raise timed_out(self.timeout_s) from None

    async def _carry(self, method: str, url: str, data: bytes) -> tuple[bytes, int, Any]:
        """One exchange through the given Transport."""
        assert self.transport is not None
        reply = await self.transport.handle(Request(method, url, data, self._headers))
        return reply.body, reply.status, reply_headers(reply)

    def _scrub(self, body: Any) -> Any:
        """Some servers echo the key in an error; it must not reach the output file."""
        if not self._secret:
            return body
        text = orjson.dumps(body).decode()
        if self._secret not in text:
            return body
        return orjson.loads(text.replace(self._secret, "<redacted>"))

    async def list_models(self) -> list[dict[str, Any]]:
        """GET {base_url}/models."""
        if self.transport is not None:
            raw, status, headers = await self._carry("GET", self.base_url + "/models", b"")
        else:
            raw, status, headers = await self._exchange("GET", "/models", b"")
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if status != 200:
            raise classify(status, self._scrub(parsed if parsed is not None else _short(raw)), headers)
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(data, list):
            raise BadResponse("the models list is not in the expected shape", status=status)
        return [m for m in data if isinstance(m, dict)]


def _short(raw: bytes, n: int = 500) -> str:
    return raw[:n].decode("utf-8", "replace")


def _error_fields(body: Any) -> tuple[str, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("code") or err.get("type") or ""), str(err.get("message") or "")
    if isinstance(err, str):
        return "", err
    return "", body if isinstance(body, str) else ""


# What an error says in words where its code does not (a gateway's `code` is the HTTP status as
# a string, "429", "400"): LiteLLM's proxy passes the upstream's message on, in its own shape.
_QUOTA_WORDS = ("exceeded your current quota", "insufficient_quota", "insufficient balance")
# a DB-less LiteLLM answers a key that is not its master key with 400 "No connected db."
_AUTH_WORDS = ("no connected db", "invalid api key", "incorrect api key", "invalid proxy server token")
_UNKNOWN_MODEL_WORDS = ("invalid model name passed", "model_not_found")
# a gateway not set up for what was asked (its Batch API without files_settings): the user's to fix
_GATEWAY_CONFIG_WORDS = ("files_settings is not set",)


def _says(message: str, words: tuple[str, ...]) -> bool:
    low = message.lower()
    return any(w in low for w in words)


def classify(status: int, body: Any, headers: Any, path: str = "") -> RequestError:
    """The RequestError for a non-200 answer, by its status, its code and, where those say less
    than the message (behind a gateway), the message's words."""
    code, message = _error_fields(body)
    text = f"HTTP {status}" + (f": {message}" if message else "")
    kw: dict[str, Any] = {"status": status, "body": body, "headers": headers}
    if status == 429 and (code == "insufficient_quota" or _says(message, _QUOTA_WORDS)):
        return QuotaExhausted(f"the account is out of quota: {message or 'HTTP 429 insufficient_quota'}", **kw)
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(headers, time.time()), **kw)
    if status in (401, 403) or status == 400 and (code == "no_db_connection" or _says(message, _AUTH_WORDS)):
        return AuthError(text, **kw)
    if code == "context_length_exceeded" or "maximum context length" in message:
        return ContextTooLong(text, **kw)
    if status == 404 or code == "model_not_found" or status == 400 and _says(message, _UNKNOWN_MODEL_WORDS):
        return ModelNotFound(text, **kw)
    if status >= 500 and _says(message, _GATEWAY_CONFIG_WORDS):
        return BadRequest(f"the gateway is not set up for this: {message}", **kw)
    if status in (408, 409) or status >= 500:
        return ServerError(text, **kw)
    if 300 <= status < 400 and headers is not None and (where := headers.get("Location")):
        # not followed: a POST sent on elsewhere may be billed there too; the base URL is the user's to fix
        base = where[: -len(path)] if path and where.endswith(path) and "://" in where else None
        hint = f": give {base} as the base URL" if base else ""
        return BadRequest(f"HTTP {status}: the server redirects to {where}{hint}", **kw)
    return BadRequest(text, **kw)

