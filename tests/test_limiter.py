"""limiter: buckets, header parsing and the controller on a fake clock, against every way a
provider enforces limits (tests/limit_world.py); no sleeping."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchrun.limit.bucket import Bucket
from batchrun.limit.controller import RateController
from batchrun.limit.headers import RateHeaders, parse_duration, parse_rate_headers
from batchrun.limit.pace import DECREASE
from batchrun.limit.permit import RateSource, Shape

from .limit_world import Job, Server, run


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1s", 1.0), ("120ms", 0.12), ("1h2m3.5s", 3723.5), ("0.5", 0.5),
     ("17ms", 0.017), ("2m", 120.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "soon", "5x", "m5s"])
def test_parse_duration_rejects_garbage(bad: str) -> None:
    assert parse_duration(bad) is None


def test_parse_rate_headers() -> None:
    h = {
        "x-ratelimit-limit-requests": "5000", "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-reset-requests": "12ms", "x-ratelimit-limit-tokens": "80000",
        "x-ratelimit-remaining-tokens": "79000", "x-ratelimit-reset-tokens": "1m30s",
    }
    assert parse_rate_headers(h) == RateHeaders(5000, 4999, 0.012, 80000, 79000, 90.0)
    assert parse_rate_headers({"content-type": "application/json"}) is None
    # a gateway sending limit and remaining but no reset
    part = parse_rate_headers({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "3"})
    assert part is not None and part.reset_requests is None and part.remaining_requests == 3


def run_requests(ctl: RateController, arrivals: list[float], tokens: list[int]) -> list[tuple[float, int]]:
    """Send requests arriving at the given times through the controller; return grant times."""
    now = 0.0
    grants = []
    for t, n in zip(sorted(arrivals), tokens, strict=True):
        now = max(now, t)
        d = ctl.delay(n, now)
        now += d
        assert ctl.delay(n, now) == 0.0
        permit = ctl.take(n, now)
        grants.append((now, n))
        ctl.on_answer(permit, n, None, now)
    return grants


def max_in_window(grants: list[tuple[float, int]], window: float) -> int:
    best = 0
    total = 0
    q: deque[tuple[float, int]] = deque()
    for t, n in grants:
        q.append((t, n))
        total += n
        while q[0][0] <= t - window:
            total -= q.popleft()[1]
        best = max(best, total)
    return best


@settings(max_examples=60, deadline=None)
@given(
    rpm=st.integers(min_value=60, max_value=6000),
    arrivals=st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), min_size=1, max_size=400),
)
def test_requests_never_exceed_limit_in_any_minute(rpm: int, arrivals: list[float]) -> None:
    ctl = RateController(rpm=rpm)
    grants = run_requests(ctl, arrivals, [1] * len(arrivals))
    assert max_in_window(grants, 60.0) <= rpm


@settings(max_examples=60, deadline=None)
@given(
    tpm=st.integers(min_value=6000, max_value=600_000),
    data=st.data(),
)
def test_tokens_never_exceed_limit_in_any_minute(tpm: int, data: st.DataObject) -> None:
    cap = max(1, tpm // 60)
    n = data.draw(st.integers(min_value=1, max_value=300))
    arrivals = data.draw(st.lists(st.floats(0, 300, allow_nan=False), min_size=n, max_size=n))
    sizes = data.draw(st.lists(st.integers(1, cap), min_size=n, max_size=n))
    grants = run_requests(RateController(tpm=tpm), arrivals, sizes)
    assert max_in_window(grants, 60.0) <= tpm


def test_steady_rate_is_close_to_the_limit() -> None:
    ctl = RateController(rpm=1200)
    grants = run_requests(ctl, [0.0] * 2400, [1] * 2400)
    span = grants[-1][0] - grants[0][0]
    assert 2400 / span * 60 >= 0.97 * 1200


def test_request_larger_than_burst_waits_for_a_full_bucket() -> None:
    b = Bucket(6000, now=0.0)  # capacity 100
    b.level = 0.0
    assert b.wait_for(5000, 0.0) == pytest.approx(100 / b.rate)


def test_headers_set_limits_and_remaining_pulls_level_down() -> None:
    ctl = RateController(ceiling=16)
    assert ctl.slow_start and ctl.delay(10, 0.0) == 0.0
    p = ctl.take(10, 0.0)
    assert ctl.delay(10, 0.0) == math.inf  # slow start: one request, then wait for its answer
    ctl.on_answer(p, 12, RateHeaders(limit_requests=600, remaining_requests=0,
                                    limit_tokens=60_000, remaining_tokens=500), 0.0)
    assert ctl.rpm == 600 and ctl.tpm == 60_000 and ctl.rpm_source == RateSource.HEADERS
    assert not ctl.slow_start and ctl.window == 16
    assert ctl.requests is not None and ctl.requests.level <= 0
    assert ctl.delay(10, 0.0) > 0


def _rounds_to_full_window(ctl: RateController, info: RateHeaders | None) -> list[int]:
    """Requests in flight per round trip until slow start ends, every answer carrying `info`."""
    now, sizes = 0.0, []
    while ctl.slow_start:
        permits = []
        while ctl.delay(1, now) == 0.0:
            permits.append(ctl.take(1, now))
        sizes.append(len(permits))
        now += 0.05
        for p in permits:
            ctl.on_answer(p, 1, info, now)
    return sizes


def test_slow_start_doubles_per_round_trip_while_answers_speak_of_limits_without_stating_one() -> None:
    ctl = RateController(ceiling=64)
    assert _rounds_to_full_window(ctl, RateHeaders(remaining_requests=100)) == [1, 2, 4, 8, 16, 32]
    assert ctl.unlimited


def test_slow_start_opens_in_one_round_trip_when_answers_state_no_limit() -> None:
    ctl = RateController(ceiling=64)
    assert _rounds_to_full_window(ctl, None) == [1, 32]  # then 64 in flight: no limit, no slowing
    assert ctl.unlimited


def test_flags_win_over_headers() -> None:
    ctl = RateController(rpm=100)
    p = ctl.take(1, 0.0)
    ctl.on_answer(p, 1, RateHeaders(limit_requests=10_000), 0.0)
    assert ctl.rpm == 100 and ctl.rpm_source == RateSource.FLAG


def test_429_pauses_every_dispatch_for_retry_after_and_refunds_its_reservation() -> None:
    ctl = RateController(rpm=6000, tpm=600_000)
    assert ctl.tokens is not None
    ctl.tokens.level = 100.0
    rejected = ctl.take(500, 10.0)
    ctl.on_rate_limited(rejected, 0.5, None, 10.0)
    assert ctl.tokens.level == 0  # the server did not count it: refunded, not left 400 in debt
    first, second = ctl.take(500, 11.0), ctl.take(500, 11.0)
    ctl.on_rate_limited(first, 5.0, None, 11.0)
    assert ctl.tokens.level <= 0  # paused: nothing accrues, one probe follows the pause
    ctl.on_rate_limited(second, 5.0, None, 11.0)
    assert ctl.tokens.level <= 0  # sent before the pause: not given back to fire again
    assert ctl.delay(1, 11.0) == pytest.approx(5.0)
    assert ctl.delay(1, 15.0) == pytest.approx(1.0)
    assert ctl.rate_limited == 3 and ctl.inflight_requests == 0 and ctl.inflight_tokens == 0


def test_429_without_retry_after_uses_reset_header() -> None:
    ctl = RateController()
    p = ctl.take(1, 0.0)
    ctl.on_rate_limited(p, None, RateHeaders(limit_requests=60, remaining_requests=0,
                                            reset_requests=2.5), 0.0)
    assert ctl.paused_until == pytest.approx(2.5)


def test_a_sub_second_retry_after_is_a_bucket_and_cuts_the_rate() -> None:
    ctl = RateController(ceiling=8)
    p = ctl.take(1, 0.0)
    ctl.on_answer(p, 1, RateHeaders(limit_requests=1200, remaining_requests=10), 0.05)
    p = ctl.take(1, 1.0)
    ctl.on_rate_limited(p, 0.04, None, 1.0)
    assert ctl.shape == Shape.BUCKET and ctl.rpm == pytest.approx(1200 * DECREASE)
    assert ctl.paused_until == pytest.approx(1.04)


def test_a_retry_after_of_seconds_is_a_window_waited_out_without_a_cut() -> None:
    ctl = RateController(ceiling=8)
    p = ctl.take(1, 0.0)
    ctl.on_answer(p, 1, RateHeaders(limit_requests=1200, remaining_requests=10), 0.05)
    p = ctl.take(1, 1.0)
    ctl.on_rate_limited(p, 37.0, None, 1.0)
    assert ctl.shape == Shape.WINDOW and ctl.rpm == 1200
    assert ctl.paused_until == pytest.approx(38.0)


def test_silent_429s_in_a_row_back_off_from_a_short_pause_and_cut_once() -> None:
    ctl = RateController(ceiling=8)
    p = ctl.take(1, 0.0)
    ctl.on_answer(p, 1, None, 0.05)
    now, pauses, rates = 1.0, [], []
    for _ in range(8):
        p = ctl.take(1, now)
        ctl.on_rate_limited(p, None, None, now)
        pauses.append(round(ctl.paused_until - now, 3))
        rates.append(ctl.rpm)
        now = ctl.paused_until
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]  # never a 30 s stall
    assert len(set(rates)) == 1  # no answer between them: one cut, not eight


def test_the_request_after_a_silent_pause_goes_alone_until_it_is_answered() -> None:
    ctl = RateController(ceiling=8)
    p = ctl.take(1, 0.0)
    ctl.on_answer(p, 1, None, 0.05)
    ctl.on_rate_limited(ctl.take(1, 1.0), None, None, 1.0)
    probe = ctl.take(1, ctl.paused_until)
    assert ctl.delay(1, 5.0) == math.inf  # the bucket would let more go: the probe's answer decides
    ctl.on_answer(probe, 1, None, 5.0)
    assert ctl.delay(1, 5.0) < math.inf


@pytest.mark.parametrize("offset", [0.0, 25.0, 50.0])
def test_bare_429s_behind_a_slow_gateway_cost_no_more_than_direct(offset: float) -> None:
    """Issue 20: a calendar minute of 30 requests, 429s that say nothing, 40 records at concurrency
    16. Through a gateway a 429 takes longer to come back (0.5 s here, LiteLLM under load); the
    probes after each pause cost the same 429s as sent straight to the server (0.05 s)."""
    rejected = []
    for reject_latency in (0.05, 0.5):
        server = Server(30, shape="minute", headers=False, retry_after=False, epoch=1_700_000_000.0 + offset)
        job = Job(RateController(ceiling=16), 40)
        rejected.append(run([job], server, reject_latency=reject_latency).rejected)
        assert job.done == 40
    direct, gateway = rejected
    assert gateway <= 1.3 * direct, rejected


def test_learned_token_scale_follows_what_the_server_counts() -> None:
    ctl = RateController(tpm=600_000)
    for i in range(50):
        p = ctl.take(ctl.reservation(100), i * 0.1)
        ctl.on_answer(p, 130, None, i * 0.1 + 0.05, est=100)
    assert ctl.reservation(100) == pytest.approx(130, abs=2)


# Whole jobs against every way a provider enforces its limits, counted at the server: the
# issue's floors (utilization over the whole job, start-up included, and the share of 429s).
SHAPES = [
    ("per-second bucket, headers", Server(2400), {}, 0.95, 0.005),
    ("per-second TPM bucket, headers", Server(240_000), {"tokens": 200, "by_tokens": True}, 0.95, 0.005),
    ("per-second bucket, retry-after only", Server(2400, headers=False), {}, 0.90, 0.02),
    ("per-second bucket, bare 429s", Server(2400, headers=False, retry_after=False), {}, 0.85, 0.03),
    ("fixed 10 s windows, headers", Server(2400, shape="fixed"), {"n": 2000}, 0.95, 0.005),
    ("calendar minutes, retry-after only", Server(600, shape="minute", headers=False), {"n": 2000}, 0.95, 0.02),
    ("two jobs on one key, headers", Server(2400), {"jobs": 2}, 0.90, 0.01),
    # `remaining` as a count of the last minute's requests rather than OpenAI's refilling deficit
    ("per-second bucket, minute-count headers", Server(2400, remaining="minute"), {}, 0.95, 0.005),
    ("two jobs, minute-count headers", Server(2400, remaining="minute"), {"jobs": 2}, 0.90, 0.01),
    ("calendar minutes, headers", Server(600, shape="minute"), {"n": 2000}, 0.95, 0.005),
]


@pytest.mark.parametrize(("name", "server", "kw", "min_util", "max_429"), SHAPES, ids=[s[0] for s in SHAPES])
def test_every_shape_is_used_to_its_limit_without_429_storms(
    name: str, server: Server, kw: dict[str, Any], min_util: float, max_429: float
) -> None:
    jobs = [Job(RateController(ceiling=64), kw.get("n", 1200), kw.get("tokens", 1)) for _ in range(kw.get("jobs", 1))]
    result = run(jobs, server, by_tokens=kw.get("by_tokens", False))
    assert all(j.done == j.records for j in jobs)
    util = result.bucket_utilization(server) if server.shape == "bucket" else result.window_utilization(server)
    assert util >= min_util, name
    assert result.share_429 <= max_429, name
