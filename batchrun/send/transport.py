"""The seam under `Client`: what carries one request and brings back its status, body and headers.

The real transport is aiohttp, spelled inline in `Client.send_once` (the hot path). A `Transport`
given to the Client replaces it: `MockTransport` answers from a function in the same process, the
way httpx's `MockTransport` does, so the sender's and the pipeline's logic (retries, stops,
drains, bookkeeping) is tested in milliseconds without a server. The tests that prove the wire
itself keep talking real HTTP on loopback.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from multidict import CIMultiDict, CIMultiDictProxy


@dataclass(frozen=True, slots=True)
class Request:
    """What a transport is asked to send."""

    method: str
    url: str
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body, parsed."""
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: a status, the body as received and the headers (case-insensitive)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON answer."""
        return cls(status, orjson.dumps(doc), {"Content-Type": "application/json", **(headers or {})})


class Transport(Protocol):
    """Sends one request. A failure to carry it raises a batchrun `RequestError` (a transport
    failure is `ConnectionLost` or `Timeout`, as `send/client` maps aiohttp's)."""

    async def handle(self, request: Request) -> Reply: ...


Handler = Callable[[Request], Reply | Awaitable[Reply]]


class MockTransport:
    """Answers every request with `handler(request)` (plain or async), in-process."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests = 0

    async def handle(self, request: Request) -> Reply:
        self.requests += 1
        reply = self.handler(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply


def reply_headers(reply: Reply) -> CIMultiDictProxy[str]:
    """A reply's headers as aiohttp gives them: read without regard to case."""
    return CIMultiDictProxy(CIMultiDict(reply.headers))
