"""An origin's keep-alive connections: at most `limit` open, idle ones reused last-in first-out,
callers past the limit queued in order."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import os
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote, unquote, urlsplit

from batchrun.errors import ConfigError, ConnectionLost
from batchrun.route.providers import API_URL, api_url, header_problem
from batchrun.secret import redact_url
from batchrun.send.http1.connection import Connection, Raw

READ_SIZE = 64 * 1024  # one read's most; an answer larger than that arrives in several


class Http1Pool:
    """Keep-alive connections to one origin (scheme, host, port), at most `limit` open."""

    def __init__(self, base_url: str, limit: int, user_agent: str,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        try:
            api_url(base_url)  # the rule options and [providers] were read by
        except ValueError:
            raise ConfigError(f"the base URL {redact_url(base_url)!r} is not {API_URL}") from None
        parts = urlsplit(base_url)
        self.loop = asyncio.get_running_loop()
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        # a gateway behind HTTP basic auth, its user and password in the URL, as aiohttp took them
        self.basic = None if parts.username is None else "Basic " + base64.b64encode(
            f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode("ascii")
        try:
            self.host = self.host.encode("idna").decode("ascii")  # an internationalised name, as DNS spells it
        except UnicodeError:
            raise ConfigError(f"the base URL {redact_url(base_url)!r} has a host name that is not one") from None
        self.base_path = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        self.host_header = host if self.port == default else f"{host}:{self.port}"
        self.user_agent = user_agent
        self.limit = max(1, limit)
        self._ssl = ssl_context  # made at the first connect: loading the system's certificates takes ~25 ms
        self._buffer = memoryview(bytearray(READ_SIZE))
        self._idle: list[Connection] = []
        self._all: set[Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()

    def head(self, method: str, path: str, headers: Mapping[str, str]) -> bytes:
        """A request's head up to its Content-Length: fixed for a client and an endpoint."""
        fields = {"host": ("Host", self.host_header), "user-agent": ("User-Agent", self.user_agent),
                  "accept": ("Accept", "*/*"), "accept-encoding": ("Accept-Encoding", "gzip, deflate")}
        if self.basic is not None:
            fields["authorization"] = ("Authorization", self.basic)
        for name, value in headers.items():  # the provider's own headers win over ours
            if (problem := header_problem(name, value)) is not None:  # never a header of its own in the head
                raise ConfigError(problem)
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
        if deadline is not None and self.loop.time() >= deadline:  # spent waiting: never written, never billed
            self._release(conn)
            raise TimeoutError
        try:
            return await conn.send(b"%b%d\r\n\r\n%b" % (head, len(body), body), read_timeout, deadline)
        finally:
            conn.finish()
            self._release(conn)

    def _idle_one(self) -> Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
            self._forget(conn)
        return None

    async def _acquire(self, connect_timeout: float | None, deadline: float | None) -> Connection:
        if (conn := self._idle_one()) is not None:
            return conn
        while len(self._all) + self._connecting >= self.limit:
            fut: asyncio.Future[Connection | None] = self.loop.create_future()
            self._waiters.append(fut)
            try:
                left = None if deadline is None else max(0.0, deadline - self.loop.time())
                given = await asyncio.wait_for(fut, left)
            except BaseException:
                if fut.done() and not fut.cancelled():
                    if (c := fut.result()) is not None:
                        self._release(c)
                    else:  # woken for room it will not use: the next waiter gets it
                        self._wake(None)
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(fut)
                raise
            if given is not None:
                if given.usable():
                    return given
                self._forget(given)  # it closed between its hand-over and now
            if (conn := self._idle_one()) is not None:
                return conn
        return await self._connect(connect_timeout, deadline)

    async def _connect(self, connect_timeout: float | None, deadline: float | None) -> Connection:
        timeout = connect_timeout
        if deadline is not None:
            left = max(0.0, deadline - self.loop.time())
            timeout = left if timeout is None else min(timeout, left)
        if self.tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        self._connecting += 1
        try:
            async with asyncio.timeout(timeout):
                _, proto = await self.loop.create_connection(
                    lambda: Connection(self.loop, self._lost, self._buffer), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except BaseException as e:
            self._connecting -= 1
            self._wake(None)  # the room it held is free for the next one to try
            if isinstance(e, TimeoutError):  # the Client words it with its --timeout
                raise
            if isinstance(e, ssl.SSLError):
                raise ConnectionLost(f"connection failed: TLS with {self.host}:{self.port} failed "
                                     f"({e.reason or e})") from e
            if isinstance(e, socket.gaierror | UnicodeError):
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
        elif not self._wake(conn):
            self._idle.append(conn)

    def _lost(self, conn: Connection) -> None:
        """A connection closed (by either end)."""
        if conn.waiter is None and conn in self._all:  # idle, or handed to a waiter not yet running
            with contextlib.suppress(ValueError):
                self._idle.remove(conn)
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            self._wake(None)

    def _wake(self, given: Connection | None) -> bool:
        """Hand a connection (None: room for one) to the first caller still waiting; False if none."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(given)
                return True
        return False

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
