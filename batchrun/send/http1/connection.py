"""One connection's exchanges: a request written whole, its answer parsed as it arrives.

Timeouts are aiohttp's `sock_read` and `total`, kept by one timer per request: `read_timeout`
bounds the wait for the next byte (a server that queues a request and sends keep-alive bytes is
not timed out), `deadline` the whole attempt. A connection is reusable only after a complete
answer that allows it; any other end (a timeout, a cancel, a cut) closes it, so no answer is ever
read as another request's.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Any

import httptools
from multidict import CIMultiDict

from batchrun.errors import BadResponse, ConnectionLost

Raw = tuple[bytes, int, CIMultiDict[str]]  # the body as received, the status, the headers


class Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; one exchange at a time. Its pool reads `closed`, `reusable`
    and `waiter` (None between exchanges)."""

    __slots__ = (
        "on_lost", "loop", "buffer", "transport", "closed", "waiter", "parser", "status", "fields", "headers",
        "body", "framed", "reusable", "got", "last", "read_timeout", "deadline", "timer",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Connection], None],
                 buffer: memoryview) -> None:
        self.on_lost = on_lost  # told when the connection closes, by either end
        self.loop = loop
        # read into, and parsed from before the next read: one buffer serves every connection of a
        # pool (asyncio's plain Protocol allocates 256 KB for each read and shrinks it)
        self.buffer = buffer
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[Raw] | None = None
        self.parser: Any = None
        self.status = 0
        self.fields: list[tuple[str, str]] = []
        self.headers: CIMultiDict[str] | None = None
        self.body: list[bytes] = []
        self.framed = True
        self.reusable = False
        self.got = False  # any byte of this exchange's answer arrived
        self.last = 0.0
        self.read_timeout: float | None = None
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.reusable = True  # nothing asked of it yet

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection cannot be trusted again
            self.abort()
            return
        self.got = True
        self.last = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(BadResponse(f"malformed HTTP answer: {e}"))

    def eof_received(self) -> bool | None:
        self.closed = True  # asyncio closes it after this; connection_lost comes a turn later
        return None  # connection_lost settles an exchange in progress

    def usable(self) -> bool:
        """Not closed by either end, even in the turn before connection_lost."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.headers is not None and not self.framed and exc is None:  # an answer that ends with its connection
                self.reusable = False
                self.on_message_complete()
            elif self.got:
                self._fail(ConnectionLost("the answer was cut off (the connection closed before its end)"))
            else:
                self._fail(_unanswered())
        self.on_lost(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.waiter is not None and self.waiter.done():  # a second answer to one request: never trusted
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers = h = CIMultiDict(self.fields)
        # llhttp reads a body with neither a length nor chunked coding until the connection closes
        self.framed = ("Content-Length" in h or "chunked" in h.get("Transfer-Encoding", "").lower()
                       or self.status in (204, 304))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.fields, self.headers, self.body, self.framed = [], None, [], True
            return
        headers = self.headers
        assert headers is not None
        self.reusable = self.framed and self.parser.should_keep_alive()
        raw = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        enc = headers.get("Content-Encoding")
        if enc is not None and raw:
            try:
                raw = _decode(raw, enc)
            except (zlib.error, ValueError) as e:
                self._fail(BadResponse(f"malformed HTTP answer: cannot decode its {enc} body ({e})"))
                return
        self._settle()
        waiter.set_result((raw, self.status, headers))

    # the exchange
    def send(self, data: bytes, read_timeout: float | None, deadline: float | None) -> asyncio.Future[Raw]:
        """Write one request; the future is its answer."""
        assert self.transport is not None
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.fields, self.headers, self.body = 0, [], None, []
        self.framed, self.reusable, self.got = True, False, False
        self.waiter = fut = self.loop.create_future()
        self.read_timeout, self.deadline = read_timeout, deadline
        self.last = now = self.loop.time()
        if self.closed:  # closed by the server between its last answer and now
            fut.set_exception(_unanswered())
            return fut
        if read_timeout is not None or deadline is not None:
            self.timer = self.loop.call_at(_due(now, read_timeout, deadline), self._check)
        self.transport.write(data)
        return fut

    def _check(self) -> None:
        """The timer: a timeout, or not yet (bytes came since it was set)."""
        self.timer = None
        now = self.loop.time()
        due = _due(self.last, self.read_timeout, self.deadline)
        if now >= due - 1e-6:
            if self.transport is not None and self.transport.get_write_buffer_size() and \
                    (self.deadline is None or now < self.deadline):  # still sending a large body: not idle
                self.last = now
                self.timer = self.loop.call_at(_due(now, self.read_timeout, self.deadline), self._check)
                return
            self._fail(TimeoutError())
        else:
            self.timer = self.loop.call_at(due, self._check)

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        self._settle()
        self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def _settle(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def finish(self) -> None:
        """The exchange is over (answered, failed or its caller gone)."""
        self._settle()
        self.waiter = None
        self.parser = None

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()


def _unanswered() -> ConnectionLost:
    return ConnectionLost("connection failed: the server closed the connection without answering")


def _due(last: float, read_timeout: float | None, deadline: float | None) -> float:
    if read_timeout is None:
        assert deadline is not None
        return deadline
    due = last + read_timeout
    return due if deadline is None or due < deadline else deadline


def _decode(raw: bytes, encoding: str) -> bytes:
    enc = encoding.strip().lower()
    if enc == "gzip" or enc == "x-gzip":
        return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    if enc == "deflate":
        try:
            return zlib.decompress(raw)
        except zlib.error:  # some servers send raw deflate, without the zlib wrapper
            return zlib.decompress(raw, -zlib.MAX_WBITS)
    if enc == "identity":
        return raw
    raise ValueError(f"unsupported content encoding {encoding!r}")
