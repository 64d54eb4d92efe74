"""limiter: buckets, header parsing and the controller on a fake clock; no sleeping."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchrun.limit.controller import AIMD_DECREASE, DEFAULT_PAUSE_S, PROBE_START, Bucket, RateController
from batchrun.limit.headers import RateHeaders, parse_duration, parse_rate_headers


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
        ctl.take(n, now)
        grants.append((now, n))
        ctl.on_answer(n, n, None, now)
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
    ctl = RateController()
    assert ctl.unlimited
    ctl.take(10, 0.0)
    ctl.on_answer(10, 12, RateHeaders(limit_requests=600, remaining_requests=0,
                                     limit_tokens=60_000, remaining_tokens=500), 0.0)
    assert ctl.rpm == 600 and ctl.tpm == 60_000 and ctl.rpm_source == "headers"
    assert ctl.requests is not None and ctl.requests.level <= 0
    assert ctl.delay(10, 0.0) > 0


def test_flags_win_over_headers() -> None:
    ctl = RateController(rpm=100)
    ctl.take(1, 0.0)
    ctl.on_answer(1, 1, RateHeaders(limit_requests=10_000), 0.0)
    assert ctl.rpm == 100 and ctl.rpm_source == "flag"


def test_429_pauses_every_dispatch_for_retry_after() -> None:
    ctl = RateController(rpm=6000)
    ctl.take(1, 10.0)
    ctl.on_rate_limited(1, 5.0, None, 10.0)
    assert ctl.delay(1, 10.0) == pytest.approx(5.0)
    assert ctl.delay(1, 14.0) == pytest.approx(1.0)
    assert ctl.rate_limited == 1


def test_429_without_retry_after_uses_reset_header() -> None:
    ctl = RateController()
    ctl.take(1, 0.0)
    ctl.on_rate_limited(1, None, RateHeaders(limit_requests=60, remaining_requests=0,
                                            reset_requests=2.5), 0.0)
    assert ctl.paused_until == pytest.approx(2.5)


def test_aimd_without_headers_starts_from_last_minute_then_cuts_and_grows() -> None:
    ctl = RateController()
    for i in range(600):  # 600 successes in the last minute, then 429s
        ctl.take(1, i * 0.05)
        ctl.on_answer(1, 1, None, i * 0.05)
    now = 30.0
    for _ in range(5):  # a burst of 429s from the in-flight requests: one decision
        ctl.take(1, now)
    for _ in range(5):
        ctl.on_rate_limited(1, None, None, now)
    assert ctl.rpm_source == "probe"
    assert ctl.rpm == pytest.approx(600 * PROBE_START)
    assert ctl.paused_until == pytest.approx(now + DEFAULT_PAUSE_S)
    now += 2.0
    for _ in range(30):  # additive increase while all is well
        ctl.take(1, now)
        ctl.on_answer(1, 1, None, now)
        now += 1.0
    grown = ctl.rpm
    assert grown is not None and grown > 600 * PROBE_START
    ctl.take(1, now)
    ctl.on_rate_limited(1, None, None, now)
    assert ctl.rpm == pytest.approx(grown * AIMD_DECREASE)


def test_silent_429s_in_a_row_double_the_pause_without_cutting_again() -> None:
    ctl = RateController()
    ctl.take(1, 0.0)
    ctl.on_answer(1, 1, None, 0.0)
    now = 1.0
    pauses = []
    for _ in range(4):
        ctl.take(1, now)
        ctl.on_rate_limited(1, None, None, now)
        pauses.append(ctl.paused_until - now)
        now = ctl.paused_until
    assert pauses == [1.0, 2.0, 4.0, 8.0]
    assert ctl.rpm is None  # one success is too little to guess a limit from: only waits


def test_silent_429s_after_a_probe_cut_once_then_only_wait_longer() -> None:
    ctl = RateController()
    for i in range(100):
        ctl.take(1, i * 0.1)
        ctl.on_answer(1, 1, None, i * 0.1)
    now = 10.0
    for _ in range(3):
        ctl.take(1, now)
        ctl.on_rate_limited(1, None, None, now)
        now = ctl.paused_until
    assert ctl.rpm == pytest.approx(100 * PROBE_START)


def test_server_remaining_allows_its_burst_but_never_a_stale_raise_near_the_limit() -> None:
    ctl = RateController()
    ctl.take(1, 0.0)
    ctl.on_answer(1, 1, RateHeaders(limit_requests=1200, remaining_requests=1190), 0.0)
    assert ctl.requests is not None and ctl.requests.level == 1190  # the server's burst is ours
    ctl.requests.level = 5.0
    ctl.take(1, 0.0)
    ctl.on_answer(1, 1, RateHeaders(limit_requests=1200, remaining_requests=30), 0.0)
    assert ctl.requests.level == 4.0  # 30 is under 2 s of rate: no raise from a maybe-stale answer
