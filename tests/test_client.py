"""client: one exchange against a real aiohttp server on 127.0.0.1, each outcome classified."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from batchrun import errors
from batchrun.secret import ApiKey
from batchrun.send.client import Client, classify, make_pool
from batchrun.send.http1.pool import Http1Pool
from batchrun.send.session import map_aiohttp_errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Client]]]:
    servers: list[TestServer] = []
    pools: list[Http1Pool] = []

    async def start(handler: Handler, timeout_s: float = 2.0) -> Client:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        app.router.add_get("/v1/models", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        url = str(server.make_url("/v1"))
        pool = Http1Pool(url, 4, "batchrun-test")
        pools.append(pool)
        return Client(pool, url, ApiKey("sk-test-123"), timeout_s)

    yield start
    for p in pools:
        await p.close()
    for srv in servers:
        await srv.close()


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status, headers=headers)
    return handler


OK_BODY = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


async def test_success_sends_bearer_key_and_returns_answer(serve) -> None:
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        seen["body"] = await request.json()
        return web.json_response(OK_BODY, headers={"x-request-id": "req_1"})

    client = await serve(handler)
    ans = await client.send_once({"model": "m", "messages": []})
    assert seen == {"auth": "Bearer sk-test-123", "body": {"model": "m", "messages": []}}
    assert ans.status == 200 and ans.request_id == "req_1" and ans.body == OK_BODY


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (429, {"error": {"code": "rate_limit_exceeded", "message": "slow"}}, {"retry-after-ms": "1500"},
         errors.RateLimited),
        (500, {"error": {"message": "boom"}}, None, errors.ServerError),
        (503, "unavailable", None, errors.ServerError),
        (408, {}, None, errors.ServerError),
        (409, {}, None, errors.ServerError),
        (401, {"error": {"code": "invalid_api_key", "message": "bad key"}}, None, errors.AuthError),
        (403, {}, None, errors.AuthError),
        (404, {"error": {"code": "model_not_found", "message": "no"}}, None, errors.ModelNotFound),
        (400, {"error": {"code": "context_length_exceeded", "message": "too long"}}, None, errors.ContextTooLong),
        (400, {"error": {"code": "invalid_value", "message": "bad"}}, None, errors.BadRequest),
        (422, {}, None, errors.BadRequest),
    ],
)
async def test_status_classification(serve, status, body, headers, kind) -> None:
    client = await serve(json_response(status, body, headers))
    with pytest.raises(kind) as info:
        await client.send_once({"model": "m"})
    assert info.value.status == status
    if kind is errors.RateLimited:
        assert info.value.retry_after == 1.5
    assert isinstance(info.value, errors.RetryableError) == (status in (429, 500, 503, 408, 409))


@pytest.mark.parametrize("payload", [b"", b"not json", b'{"choi', b'{"no_choices": 1}',
                                     b"<html><body>502 Bad Gateway</body></html>"])
async def test_200_with_bad_body_is_retryable_and_shows_what_came(serve, payload: bytes) -> None:
    """A 200 with no readable answer is retried like a 5xx (it may have been billed, which the
    summary counts), and the error shows what came back."""
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="text/html" if payload.startswith(b"<") else "application/json")

    client = await serve(handler)
    with pytest.raises(errors.UnreadableAnswer) as caught:
        await client.send_once({"model": "m"})
    assert isinstance(caught.value, errors.RetryableError)
    assert payload[:20].decode() in caught.value.message and "content" not in caught.value.message[:5]
    if payload.startswith(b"<"):
        assert "text/html" in caught.value.message


async def test_connection_reset_is_connection_lost(serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    client = await serve(handler)
    with pytest.raises(errors.ConnectionLost):
        await client.send_once({"model": "m"})


async def test_slow_answer_is_timeout(serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response(OK_BODY)

    client = await serve(handler, timeout_s=0.2)
    with pytest.raises(errors.Timeout):
        await client.send_once({"model": "m"})


async def test_refused_connection_is_connection_lost() -> None:
    async with make_pool("http://127.0.0.1:9/v1", 1) as pool:
        client = Client(pool, "http://127.0.0.1:9/v1", ApiKey(None), 2.0)
        with pytest.raises(errors.ConnectionLost):
            await client.send_once({"model": "m"})


def test_mapping_covers_every_aiohttp_client_error() -> None:
    """Every public aiohttp.ClientError subclass becomes a batchrun RequestError."""
    classes = [c for _, c in inspect.getmembers(aiohttp, inspect.isclass) if issubclass(c, aiohttp.ClientError)]
    assert len(classes) > 10
    for cls in classes:
        try:
            exc = cls.__new__(cls)
            Exception.__init__(exc, "x")
            if isinstance(exc, aiohttp.ClientResponseError):
                exc.status, exc.message = 500, "x"
        except TypeError:  # pragma: no cover
            continue
        with pytest.raises(errors.RequestError):
            with map_aiohttp_errors(1.0):
                raise exc


def test_key_repr_is_redacted() -> None:
    key = ApiKey("sk-very-secret")
    assert "sk-very-secret" not in repr(key) and "sk-very-secret" not in str(key)
    assert key.reveal() == "sk-very-secret"


async def test_list_models(serve) -> None:
    client = await serve(json_response(200, {"data": [{"id": "a"}, {"id": "b"}]}))
    assert [m["id"] for m in await client.list_models()] == ["a", "b"]


# What LiteLLM 1.108's proxy answers, as seen in front of the simulator: `code` is the HTTP
# status as a string, the upstream's meaning only in the words.
@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, {"error": {"message": "litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your "
                                    "current quota, please check your plan and billing details.",
                         "type": "throttling_error", "code": "429"}}, errors.QuotaExhausted),
        (429, {"error": {"message": "litellm.RateLimitError: Rate limit reached.", "type": "throttling_error",
                         "code": "429"}}, errors.RateLimited),
        (400, {"error": {"message": "/chat/completions: Invalid model name passed in model=gpt-4o-minii. Call "
                                    "`/v1/models` to view available models for your key.",
                         "type": "invalid_request_error", "code": "400"}}, errors.ModelNotFound),
        (400, {"error": {"message": "No connected db.", "type": "no_db_connection", "code": "400"}},
         errors.AuthError),
        (500, {"error": {"message": "files_settings is not set, set it on your config.yaml file.",
                         "type": "internal_server_error", "code": "500"}}, errors.BadRequest),
    ],
)
def test_a_gateways_errors_are_classified_by_their_words(status: int, body: Any, kind: type) -> None:
    err = classify(status, body, {})
    assert type(err) is kind
    assert isinstance(err, errors.RetryableError) == (kind is errors.RateLimited)


async def test_a_gateway_is_recognised_asked_not_to_retry_and_waited_for(serve) -> None:
    """Once an answer shows LiteLLM's headers, every body carries num_retries 0 and the read
    timeout between bytes is off (a held request is waited for, never resent); the request id is
    the upstream's."""
    bodies: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        if len(bodies) == 2:
            await asyncio.sleep(0.3)  # held past --timeout, without a byte
        return web.json_response(OK_BODY, headers={"x-litellm-call-id": "call-1",
                                                   "llm_provider-x-request-id": "req_up"})

    client = await serve(handler, timeout_s=0.1)
    first = await client.send_once({"model": "m", "messages": []})
    second = await client.send_once({"model": "m", "messages": []})
    assert "num_retries" not in bodies[0] and bodies[1]["num_retries"] == 0
    assert first.request_id == second.request_id == "req_up" and second.gateway


async def test_a_redirect_is_not_followed_and_says_where_to(serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"Location": "https://api.example.com/v1/chat/completions"})

    client = await serve(handler)
    with pytest.raises(errors.BadRequest, match=r"redirects to https://api\.example\.com/v1/chat/completions") as e:
        await client.send_once({"model": "m"})
    assert e.value.message.endswith(": give https://api.example.com/v1 as the base URL")  # safe to follow as it is
