"""The simulator enforces limits the way providers do: the pure shapes on a fake clock, then
headers, retry-after, quota and the keep-alive queue over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.errors import ConfigError
from batchrun.sim.limits import ModelLimits, Shape, go_duration, retry_after_headers
from batchrun.sim.server import SimConfig, Simulator

MINUTE = 60.0 * 28_000_000  # a calendar-minute boundary of the epoch


class FakeClock:
    """A wall clock that moves only when told."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def admitted(limits: ModelLimits, n: int, now: float, tokens: int = 1) -> int:
    """How many of n requests at `now` the limits let through."""
    return sum(limits.admit(tokens, now) == 0.0 for _ in range(n))


# --- pure shapes -------------------------------------------------------------------------------

def test_bucket_admits_its_capacity_then_refills_at_the_rate() -> None:
    lim = ModelLimits(120, None, Shape("bucket", burst_s=1.0), now=0.0)  # 2 a second, holds 2
    assert admitted(lim, 5, 0.0) == 2
    assert lim.admit(1, 0.0) == pytest.approx(0.5)
    assert admitted(lim, 3, 0.5) == 1
    assert admitted(lim, 3, 2.0) == 2  # a long pause refills only to the capacity
    big = ModelLimits(60, None, Shape("bucket", burst_s=10.0), now=0.0)
    assert admitted(big, 20, 0.0) == 10


def test_bucket_holds_at_least_one_and_charges_tokens() -> None:
    assert admitted(ModelLimits(6, None, Shape("bucket"), now=0.0), 3, 0.0) == 1
    lim = ModelLimits(None, 6000, Shape("bucket"), now=0.0)  # 100 tokens a second, holds 100
    assert lim.admit(80, 0.0) == 0.0
    assert lim.admit(80, 0.0) == pytest.approx(0.6)
    # dearer than the bucket: admitted when full, and the debt is paid before anything goes
    assert lim.admit(250, 1.0) == 0.0
    assert lim.admit(10, 1.0) == pytest.approx(1.6)


def test_fixed_windows_reset_at_boundaries_from_the_start() -> None:
    lim = ModelLimits(60, None, Shape("fixed", window_s=10.0, origin=100.0), now=100.0)  # 10 a window
    assert admitted(lim, 15, 105.0) == 10
    assert lim.admit(1, 107.5) == pytest.approx(2.5)  # the window ends at 110, not 115
    assert admitted(lim, 15, 109.999) == 0
    assert admitted(lim, 15, 110.0) == 10
    assert admitted(lim, 1, 120.0) == 1


def test_minute_windows_reset_at_calendar_minutes() -> None:
    lim = ModelLimits(3, None, Shape("minute"), now=MINUTE + 45)
    assert admitted(lim, 5, MINUTE + 45) == 3
    assert lim.admit(1, MINUTE + 50) == pytest.approx(10.0)
    assert admitted(lim, 5, MINUTE + 60) == 3


@pytest.mark.parametrize("shape", [Shape("bucket", burst_s=0.5), Shape("fixed", window_s=1.0, origin=3.3),
                                   Shape("minute")])
def test_retry_after_is_the_time_to_admission(shape: Shape) -> None:
    now = MINUTE + 7.25
    lim = ModelLimits(600, 90_000, shape, now=now)
    while (wait := lim.admit(700, now)) == 0.0:
        pass
    assert lim.admit(700, now + wait - 0.001) > 0.0
    assert lim.admit(700, now + wait) == 0.0


def test_headers_in_openai_formats() -> None:
    lim = ModelLimits(60, 150_000, Shape("bucket"), now=0.0)
    assert lim.admit(16, 0.0) == 0.0
    assert lim.headers(0.0) == {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984", "x-ratelimit-reset-tokens": "7ms",
    }
    assert [go_duration(s) for s in (0, 0.12, 1, 8.64, 86.4, 360, 3725.5)] == [
        "0s", "120ms", "1s", "8.64s", "1m26.4s", "6m0s", "1h2m5.5s"]
    assert retry_after_headers(14.5, "both") == {"retry-after": "15", "retry-after-ms": "14500"}
    assert retry_after_headers(0.2, "seconds") == {"retry-after": "1"}
    assert retry_after_headers(0.2, "ms") == {"retry-after-ms": "200"}
    assert retry_after_headers(0.2, "none") == {}


@pytest.mark.parametrize("kw", [{"window": "sliding"}, {"retry_after": "minutes"}, {"window_s": 0},
                                {"queue_over": 0}, {"quota": -1}, {"keepalive_s": -1.0}])
def test_bad_values_are_one_sentence_config_errors(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as e:
        Simulator(SimConfig(**kw))
    assert e.value.message.startswith("--") and "\n" not in e.value.message


def test_cli_refuses_bad_values_with_exit_2() -> None:
    res = CliRunner().invoke(app, ["mock-server", "--port", "0", "--retry-after", "later"])
    assert res.exit_code == 2 and "--retry-after 'later'" in res.output
    res = CliRunner().invoke(app, ["mock-server", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "loopback" in res.output


# --- over HTTP ---------------------------------------------------------------------------------

Serve = Callable[..., Awaitable[tuple[Simulator, str]]]
BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    sims: list[Simulator] = []

    async def make(clock: FakeClock | None = None, **kw: Any) -> tuple[Simulator, str]:
        sim = Simulator(SimConfig(**kw), clock=clock or FakeClock(MINUTE + 45.5))
        sims.append(sim)
        return sim, await sim.start()

    yield make
    for sim in sims:
        await sim.stop()


async def post(session: aiohttp.ClientSession, url: str, content: str = "hello there") -> tuple[int, Any, bytes]:
    body = {**BODY, "messages": [{"role": "user", "content": content}]}
    async with session.post(url + "/chat/completions", json=body) as r:
        return r.status, r.headers, await r.read()


async def test_rate_headers_on_every_answer_and_off(serve: Serve) -> None:
    sim, url = await serve(rpm=60)
    async with aiohttp.ClientSession() as s:
        status, h, _ = await post(s, url)
        assert status == 200 and h["x-ratelimit-remaining-requests"] == "59"
        assert h["x-ratelimit-reset-requests"] == "1s" and h["x-ratelimit-limit-requests"] == "60"
        status, h, _ = await post(s, url)
        assert status == 429 and "x-ratelimit-limit-requests" in h and h["retry-after-ms"] == "1000"
    sim, url = await serve(rpm=60, headers=False)
    async with aiohttp.ClientSession() as s:
        assert not any(k.lower().startswith("x-ratelimit") for k in (await post(s, url))[1])
        status, h, _ = await post(s, url)
        assert status == 429 and h["retry-after"] == "1"  # --no-headers leaves retry-after alone
        assert not any(k.lower().startswith("x-ratelimit") for k in h)
    assert sim.stats.rate_limited == 1 and len(sim.stats.admitted) == 1
    assert sim.stats.admitted[0][1:] == (1, sim.stats.prompt_tokens + sim.stats.completion_tokens)


@pytest.mark.parametrize(("mode", "want"), [
    ("both", {"retry-after": "15", "retry-after-ms": "14500"}), ("seconds", {"retry-after": "15"}),
    ("ms", {"retry-after-ms": "14500"}), ("none", {}),
])
async def test_each_retry_after_mode_tells_the_wait_to_the_next_minute(
    serve: Serve, mode: str, want: dict[str, str]
) -> None:
    _, url = await serve(rpm=1, window="minute", retry_after=mode)  # the clock is 14.5 s before a minute
    async with aiohttp.ClientSession() as s:
        assert (await post(s, url))[0] == 200
        status, h, _ = await post(s, url)
    assert status == 429
    assert {k: h[k] for k in ("retry-after", "retry-after-ms") if k in h} == want


async def test_quota_runs_out_with_insufficient_quota_and_no_retry_after(serve: Serve) -> None:
    sim, url = await serve(quota=2)
    async with aiohttp.ClientSession() as s:
        first = [await post(s, url, f"q{i}") for i in range(2)]
        status, h, body = await post(s, url, "q9")
        stats = orjson.loads(await (await s.get(url.rsplit("/v1", 1)[0] + "/_sim/stats")).read())
    assert [r[0] for r in first] == [200, 200]
    assert status == 429 and "retry-after" not in h and "retry-after-ms" not in h
    assert orjson.loads(body)["error"] == {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "code": "insufficient_quota"}
    assert sim.stats.billed == 2 and stats["billed"] == 2 and stats["rate_limited"] == 1
    assert stats["first_request_at"] is not None and len(stats["admitted"]) == 2


async def test_keepalive_queue_holds_instead_of_refusing(serve: Serve) -> None:
    sim, url = await serve(queue_over=1, latency_ms=120, keepalive_s=0.02)
    async with aiohttp.ClientSession() as s:
        answers = await asyncio.gather(*(post(s, url, f"k{i}") for i in range(3)))
    assert [a[0] for a in answers] == [200, 200, 200]
    held = [body for _, _, body in answers if body.startswith(b"\n")]
    assert len(held) == 2  # the third waits for two latencies, the second for one
    for _, _, body in answers:
        assert orjson.loads(body)["choices"][0]["message"]["role"] == "assistant"
    assert sim.stats.billed == 3 and sim.stats.concurrent_max == 1
    assert sim.stats.billed_by_prompt["k0"] == 1


async def test_held_answer_is_billed_though_the_client_went_away(serve: Serve) -> None:
    sim, url = await serve(queue_over=1, latency_ms=120, keepalive_s=0.02)
    async with aiohttp.ClientSession() as s:
        posts = [asyncio.ensure_future(s.post(url + "/chat/completions", json={**BODY, "model": m}))
                 for m in ("a", "b")]
        done, pending = await asyncio.wait(posts, return_when=asyncio.FIRST_COMPLETED)
        held = done.pop().result()  # a held request has its status and headers at once
        assert held.status == 200 and not held.content.is_eof()
        held.close()  # the client gives up and drops the connection
        answered = await pending.pop()
        assert answered.status == 200 and orjson.loads(await answered.read())["usage"]
        answered.release()
        await sim.idle()
    assert sim.stats.billed == 2 and sim.stats.billed_unsent == 1
    assert sim.stats.billed_by_prompt["hello there"] == 2  # one prompt, billed twice
