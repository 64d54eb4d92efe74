"""The sender's logic in-process over the transport seam (no server, milliseconds): retries, 429s,
transport failures, a stop that lets go of records held by the limiter. The wire itself is proved
by the real-HTTP tests (test_client, test_ratelimit, the simulator's jobs)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from batchrun.account.pricing import PriceBook
from batchrun.errors import AuthError, ConnectionLost, NotSent
from batchrun.limit.budget import Budget
from batchrun.limit.limiter import Limiters
from batchrun.records import Record
from batchrun.secret import ApiKey
from batchrun.send.client import Client
from batchrun.send.retry import RetryPolicy
from batchrun.send.sender import Sender
from batchrun.send.transport import MockTransport, Reply, Request

OK = {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}


def rec(i: int) -> Record:
    body = {"model": "m", "messages": [{"role": "user", "content": str(i)}]}
    return Record(key=f"k{i}", line=i, model="m", body=body, est_input_tokens=5, max_output_tokens=1)


def sender(handler: Callable[[Request], Reply], limiters: Limiters | None = None) -> tuple[Sender, MockTransport]:
    transport = MockTransport(handler)
    client = Client(None, "http://nowhere.invalid/v1", ApiKey("sk-test"), 5.0, transport=transport)
    return Sender(client, limiters or Limiters(ceiling=8), PriceBook(use_snapshot=False), Budget(None),
                  RetryPolicy(max_attempts=3, base_s=0.001), rng=random.Random(0)), transport


async def test_a_500_is_retried_and_the_answer_recorded_with_its_attempts() -> None:
    calls: list[Request] = []

    def handler(request: Request) -> Reply:
        calls.append(request)
        return Reply.json(500 if len(calls) == 1 else 200, {"error": {"message": "boom"}} if len(calls) == 1 else OK)

    s, _ = sender(handler)
    result = await s.send(rec(1))
    assert result.ok and result.attempts == 2 and result.usage.input_tokens == 5
    assert calls[0].url.endswith("/chat/completions") and calls[0].json()["model"] == "m"
    assert calls[0].headers["Authorization"] == "Bearer sk-test"


async def test_429s_are_no_failures_and_a_transport_failure_is_retried() -> None:
    n = 0

    def handler(request: Request) -> Reply:
        nonlocal n
        n += 1
        if n == 1:
            raise ConnectionLost("connection failed: reset")
        if n <= 5:  # more 429s than --max-attempts: none of them counts
            return Reply.json(429, {"error": {"code": "rate_limit_exceeded"}}, {"retry-after-ms": "1"})
        return Reply.json(200, OK)

    s, transport = sender(handler)
    result = await s.send(rec(1))
    assert result.ok and result.rate_limited == 4 and transport.requests == 6


async def test_a_refused_key_stops_the_job_naming_no_key() -> None:
    s, _ = sender(lambda r: Reply.json(401, {"error": {"message": "bad key sk-test"}}))
    with pytest.raises(AuthError) as e:
        await s.send(rec(1))
    assert "sk-test" not in str(e.value)


async def test_a_stop_lets_go_of_records_the_limiter_holds_without_sending_them() -> None:
    s, transport = sender(lambda r: Reply.json(200, OK), Limiters(rpm=60, ceiling=8))  # one a second
    first = await s.send(rec(0))  # the burst's one request
    assert first.ok
    held = [asyncio.ensure_future(s.send(rec(i))) for i in range(1, 6)]
    await asyncio.sleep(0)  # they queue on the limiter
    s.stopping.set()
    outcomes = await asyncio.gather(*held, return_exceptions=True)
    assert sum(isinstance(o, NotSent) for o in outcomes) >= 4
    assert transport.requests == 1 + sum(1 for o in outcomes if not isinstance(o, BaseException))
