"""An origin's keep-alive connections: at most `limit` open, idle ones reused last-in first-out,
callers past the limit queued in order."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote, urlsplit

from batchrun.errors import ConfigError, ConnectionLost
from batchrun.send.http1.connection import Connection, Raw

READ_SIZE = 64 * 1024  # one read's most; an answer larger than that arrives in several


class Http1Pool:
    """Keep-alive connections to one origin (scheme, host, port), at most `limit` open."""

    def __init__(self, base_url: str, limit: int, user_agent: str,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"the base URL {base_url!r} is not an http:// or https:// URL")
        self.loop = asyncio.get_running_loop()
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if self.tls else 80)
        except ValueError:
            raise ConfigError(f"the base URL {base_url!r} has a port that is not a number") from None
        self.base_path = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        self.host_header = host if self.port == default else f"{host}:{self.port}"
        self.user_agent = user_agent
        self.limit = max(1, limit)
        self._ssl: ssl.SSLContext | None = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._buffer = memoryview(bytearray(READ_SIZE))
        self._idle: list[Connection] = []
        self._all: set[Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()

    def head(self, method: str, path: str, headers: Mapping[str, str]) -> bytes:
        """A request's head up to its Content-Length: fixed for a client and an endpoint."""
        fields = {"host": ("Host", self.host_header), "user-agent": ("User-Agent", self.user_agent),
                  "accept": ("Accept", "*/*"), "accept-encoding": ("Accept-Encoding", "gzip, deflate")}
        for name, value in headers.items():  # the provider's own headers win over ours
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ConfigError(f"the header {name!r} has a line break in it")
            fields[name.lower()] = (name, value)
        fields.pop("content-length", None)
        lines = [f"{method} {self.base_path}{path} HTTP/1.1", *(f"{n}: {v}" for n, v in fields.values())]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("utf-8")

    async def request(self, head: bytes, body: bytes, connect_timeout: float | None,
                      read_timeout: float | None, total: float | None) -> Raw:
        """One exchange: the body, its status and its headers. A timeout raises TimeoutError; a
        failed connection or a cut answer ConnectionLost; a malformed answer BadResponse."""
        deadline = self.loop.time() + total if total is not None else None
        conn = await self._acquire(connect_timeout, deadline)
        try:
            return await conn.send(b"%b%d\r\n\r\n%b" % (head, len(body), body), read_timeout, deadline)
        finally:
            conn.finish()
            self._release(conn)

    async def _acquire(self, connect_timeout: float | None, deadline: float | None) -> Connection:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        while len(self._all) + self._connecting >= self.limit:
            fut: asyncio.Future[Connection | None] = self.loop.create_future()
            self._waiters.append(fut)
            try:
                left = None if deadline is None else max(0.0, deadline - self.loop.time())
                given = await asyncio.wait_for(fut, left)
            except BaseException:
                if fut.done() and not fut.cancelled() and (c := fut.result()) is not None:
                    self._release(c)
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(fut)
                raise
            if given is not None:
                return given
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn
        return await self._connect(connect_timeout, deadline)

    async def _connect(self, connect_timeout: float | None, deadline: float | None) -> Connection:
        timeout = connect_timeout
        if deadline is not None:
            left = max(0.0, deadline - self.loop.time())
            timeout = left if timeout is None else min(timeout, left)
        self._connecting += 1
        try:
            async with asyncio.timeout(timeout):
                _, proto = await self.loop.create_connection(
                    lambda: Connection(self.loop, self._lost, self._buffer), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except BaseException as e:
            self._connecting -= 1
            self._wake(None)  # the room it held is free for the next one to try
            if isinstance(e, TimeoutError):  # the Client words it with its --timeout
                raise
            if isinstance(e, ssl.SSLError):
                raise ConnectionLost(f"connection failed: TLS with {self.host}:{self.port} failed "
                                     f"({e.reason or e})") from e
            if isinstance(e, socket.gaierror):
                raise ConnectionLost(f"connection failed: cannot resolve the host {self.host}") from e
            if isinstance(e, OSError):
                raise ConnectionLost(f"connection failed: cannot connect to {self.host}:{self.port} "
                                     f"({_why(e)})") from e
            raise
        self._connecting -= 1
        self._all.add(proto)
        return proto

    def _release(self, conn: Connection) -> None:
        if not conn.reusable or conn.closed:
            conn.abort()
            self._forget(conn)
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)

    def _lost(self, conn: Connection) -> None:
        """A connection closed (by either end)."""
        if conn.waiter is None and conn in self._all:  # idle: it will not be handed out again
            with contextlib.suppress(ValueError):
                self._idle.remove(conn)
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            self._wake(None)

    def _wake(self, given: Connection | None) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(given)
                return

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self._all):
            conn.abort()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports' connection_lost run before the loop ends


@contextlib.asynccontextmanager
async def open_pool(base_url: str, limit: int, user_agent: str) -> AsyncIterator[Http1Pool]:
    """A pool closed on the way out."""
    pool = Http1Pool(base_url, limit, user_agent)
    try:
        yield pool
    finally:
        await pool.close()


def _why(e: OSError) -> str:
    """An OSError of a connect in words; with several addresses tried, asyncio joins their errors."""
    code = e.errno
    if code is None and f"[Errno {errno.ECONNREFUSED}]" in str(e):
        code = errno.ECONNREFUSED
    return os.strerror(code).lower() if isinstance(code, int) else "no connection"
