"""send/http1: the live requests' wire, against raw servers on 127.0.0.1 that write exact bytes
(answers framed every way HTTP/1.1 allows, cut, stalled, trickled, closed)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from batchrun.errors import BadResponse, ConfigError, ConnectionLost
from batchrun.send.http1.pool import Http1Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON = b'{"ok":true}'


class Raw:
    """A server that runs `handler` for each request it reads, and counts its connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.eofs = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                self.requests.append(head + await reader.readexactly(length))
                await self.handler(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eofs += 1
        except asyncio.CancelledError:  # the test is over
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[Raw, Http1Pool]]]]:
    servers: list[asyncio.Server] = []
    pools: list[Http1Pool] = []

    async def start(handler: Handler, limit: int = 4) -> tuple[Raw, Http1Pool]:
        raw = Raw(handler)
        server = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        pool = Http1Pool(f"http://127.0.0.1:{port}/v1", limit, "batchrun-test")
        pools.append(pool)
        return raw, pool

    yield start
    for p in pools:
        await p.close()
    for s in servers:
        s.close()
        await s.wait_closed()


def answer(body: bytes = JSON, extra: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%b\r\n%b" % (
        status, len(body), extra, body)


def in_turn(*handlers: Handler) -> Handler:
    """The first request gets the first handler's answer, the next the next's, the last repeats."""
    seen = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        await handlers[min(len(seen), len(handlers)) - 1](reader, writer)
    return handler


def writes(*parts: bytes, close: bool = False, pause: float = 0.0, delay: float = 0.0) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if close:
            writer.close()
    return handler


async def post(pool: Http1Pool, body: bytes = b'{"model":"m"}', read: float | None = 2.0,
               total: float | None = None) -> tuple[bytes, int, object]:
    head = pool.head("POST", "/chat/completions", {"Authorization": "Bearer k"})
    return await pool.request(head, body, 2.0, read, total)


async def test_a_request_is_one_well_formed_post_and_keep_alive_reuses_its_connection(serve) -> None:
    raw, pool = await serve(writes(answer(extra=b"x-request-id: req_1\r\n")))
    for _ in range(3):
        body, status, headers = await post(pool)
        assert (body, status, headers["X-Request-Id"]) == (JSON, 200, "req_1")
    assert raw.connections == 1
    first = raw.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer k\r\n" in first and b"\r\nContent-Length: 13\r\n\r\n" in first
    assert first.endswith(b'\r\n\r\n{"model":"m"}') and b"Host: 127.0.0.1:" in first


async def test_a_chunked_answer_is_joined(serve) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4\r\n{\"ok\r\n7\r\n\":true}\r\n0\r\n\r\n")
    _, pool = await serve(writes(chunked, pause=0.01))
    assert (await post(pool))[0] == JSON


async def test_a_gzip_answer_is_decoded(serve) -> None:
    _, pool = await serve(writes(answer(gzip.compress(JSON), b"Content-Encoding: gzip\r\n")))
    assert (await post(pool))[0] == JSON


async def test_an_answer_that_ends_with_its_connection_is_read_and_the_connection_not_reused(serve) -> None:
    raw, pool = await serve(writes(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + JSON, close=True))
    assert (await post(pool))[0] == JSON
    assert (await post(pool))[0] == JSON
    assert raw.connections == 2


async def test_connection_close_opens_a_new_connection_for_the_next_request(serve) -> None:
    raw, pool = await serve(writes(answer(extra=b"Connection: close\r\n"), close=True))
    await post(pool)
    await post(pool)
    assert raw.connections == 2


async def test_an_answer_cut_off_is_connection_lost(serve) -> None:
    _, pool = await serve(writes(answer()[:-4], close=True))
    with pytest.raises(ConnectionLost, match="cut off"):
        await post(pool)


async def test_a_server_that_closes_without_answering_is_connection_lost(serve) -> None:
    _, pool = await serve(writes(close=True))
    with pytest.raises(ConnectionLost, match="without answering"):
        await post(pool)


async def test_a_malformed_answer_is_bad_response(serve) -> None:
    _, pool = await serve(writes(b"NOT HTTP AT ALL\r\n\r\n"))
    with pytest.raises(BadResponse, match="malformed HTTP answer"):
        await post(pool)


async def test_an_interim_100_continue_is_passed_over(serve) -> None:
    _, pool = await serve(writes(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(status=b"201 Created")))
    body, status, _ = await post(pool)
    assert (body, status) == (JSON, 201)


async def test_a_stall_past_the_read_timeout_times_out_and_the_connection_is_closed(serve) -> None:
    stall = writes(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", pause=5.0)
    raw, pool = await serve(in_turn(stall, writes(answer())))
    with pytest.raises(TimeoutError):
        await post(pool, read=0.2)
    assert (await post(pool))[0] == JSON
    assert raw.connections == 2  # closed: its answer can never be read as another request's


async def test_bytes_that_keep_coming_hold_off_the_read_timeout(serve) -> None:
    # a server that queues the request and sends keep-alive bytes (DeepSeek's empty lines)
    body = b"\n" * 8 + JSON
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    _, pool = await serve(writes(head, *(b"\n" for _ in range(8)), JSON, pause=0.1))
    got, status, _ = await post(pool, read=0.3)
    assert (got, status) == (body, 200)


async def test_the_whole_attempt_is_bounded_by_its_total_even_while_bytes_come(serve) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    _, pool = await serve(writes(head, *(b" " for _ in range(50)), pause=0.05))
    with pytest.raises(TimeoutError):
        await post(pool, read=0.3, total=0.5)


async def test_a_refused_connection_says_where() -> None:
    pool = Http1Pool("http://127.0.0.1:9/v1", 1, "batchrun-test")
    with pytest.raises(ConnectionLost, match=r"cannot connect to 127\.0\.0\.1:9 \(connection refused\)"):
        await post(pool)
    await pool.close()


async def test_at_most_limit_connections_are_open_and_every_caller_is_answered(serve) -> None:
    raw, pool = await serve(writes(answer(), pause=0.02), limit=2)
    results = await asyncio.gather(*(post(pool) for _ in range(9)))
    assert [r[1] for r in results] == [200] * 9
    assert raw.connections == 2


async def test_a_cancelled_request_closes_its_connection(serve) -> None:
    raw, pool = await serve(in_turn(writes(answer(), delay=5.0), writes(answer())))
    task = asyncio.create_task(post(pool))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await post(pool))[1] == 200
    assert raw.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_used_again(serve) -> None:
    raw, pool = await serve(writes(answer(), close=True))  # closes after answering, without saying so
    await post(pool)
    await asyncio.sleep(0.05)  # the close arrives while the connection is idle
    assert (await post(pool))[1] == 200
    assert raw.connections == 2


async def test_the_head_carries_the_provider_headers_over_ours() -> None:
    pool = Http1Pool("https://api.example.com:8443/openai/v1/", 1, "batchrun/1")
    head = pool.head("POST", "/chat/completions", {"user-agent": "mine", "X-Title": "t"})
    text = head.decode()
    assert text.startswith("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: api.example.com:8443\r\n")
    assert "user-agent: mine" in text and "batchrun/1" not in text and "X-Title: t" in text
    assert text.endswith("\r\nContent-Length: ")
    with pytest.raises(ConfigError, match="line break"):
        pool.head("POST", "/x", {"X-Evil": "a\r\nInjected: 1"})
    await pool.close()


async def test_a_body_still_uploading_is_not_a_read_timeout(serve) -> None:
    big = b"x" * (24 << 20)

    async def serve_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2.5)  # a slow uplink: the body sits in the send buffers, 2.5 times --timeout
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        writer.write(answer())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_slowly, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Http1Pool(f"http://127.0.0.1:{port}/v1", 1, "batchrun-test")
    try:
        assert (await post(pool, body=big, read=1.0))[1] == 200
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()


async def test_a_reset_in_an_answer_read_to_its_close_is_a_cut_not_an_answer(serve) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + JSON[:4])
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        writer.transport.abort()
    _, pool = await serve(reset)
    with pytest.raises(ConnectionLost, match="cut off"):
        await post(pool)


async def test_a_waiter_woken_for_room_and_cancelled_passes_the_room_on(serve) -> None:
    _, pool = await serve(writes(answer(), delay=0.2), limit=1)
    first = asyncio.create_task(post(pool))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(post(pool))
    third = asyncio.create_task(post(pool))
    await asyncio.sleep(0.05)
    assert len(pool._waiters) == 2
    pool._all.clear()  # the first's connection is gone: room for one, the second is woken for it
    pool._wake(None)
    second.cancel()  # ...and cancelled before it runs
    third_result = await third
    assert third_result[1] == 200
    with pytest.raises(asyncio.CancelledError):
        await second
    first.cancel()


async def test_a_user_and_password_in_the_base_url_are_sent_as_basic_auth_and_never_shown() -> None:
    pool = Http1Pool("https://gate%40way:p%3Ass@example.com/v1", 1, "batchrun-test")
    assert b"\r\nAuthorization: Basic Z2F0ZUB3YXk6cDpzcw==\r\n" in pool.head("POST", "/x", {})  # gate@way:p:ss
    assert b"Bearer" in pool.head("POST", "/x", {"Authorization": "Bearer k"})  # a key's header wins
    with pytest.raises(ConfigError) as e:
        Http1Pool("https://gateway:SECRET@example.com/v1?x=1", 1, "batchrun-test")
    assert "SECRET" not in e.value.message
    await pool.close()


async def test_a_host_name_goes_on_the_wire_as_dns_spells_it() -> None:
    pool = Http1Pool("http://bücher.example:8080/v1", 1, "batchrun-test")
    assert b"Host: xn--bcher-kva.example:8080\r\n" in pool.head("POST", "/x", {})
    with pytest.raises(ConfigError, match="header name"):
        pool.head("POST", "/x", {"Bad Name": "v"})
    await pool.close()


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "not a url", "http://example.com:port/v1",
                                 "https://example.com/v1?api-version=1", "https://example.com/v1#x"])
async def test_a_base_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        Http1Pool(url, 1, "batchrun-test")


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (openssl), and a client context that trusts it."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_https_verifies_the_certificate_and_speaks_over_tls(certificate) -> None:
    server_ctx, client_ctx = certificate
    raw = Raw(writes(answer()))
    server = await asyncio.start_server(raw.serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    trusting = Http1Pool(f"https://127.0.0.1:{port}/v1", 2, "batchrun-test", ssl_context=client_ctx)
    system = Http1Pool(f"https://127.0.0.1:{port}/v1", 2, "batchrun-test")  # the system's CAs: not this one
    try:
        assert await post(trusting) == (JSON, 200, (await post(trusting))[2])
        assert raw.connections == 1
        with pytest.raises(ConnectionLost, match=r"TLS with 127\.0\.0\.1:\d+ failed"):
            await post(system)
    finally:
        await trusting.close()
        await system.close()
        server.close()
        await server.wait_closed()
