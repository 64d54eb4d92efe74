"""Slow start and the first cut, on a fake clock: a server that generates (answers take long)
gets the whole concurrency from the second round trip; a burst that meets a limit no header
stated is cut to what the limit let through, read from the burst's own answers."""

from __future__ import annotations

from batchrun.limit.controller import RateController

from .limit_world import Job, Server, run


def _rounds(ctl: RateController, latency: float) -> list[int]:
    """Requests in flight per round trip until slow start ends, answers stating no limit."""
    now, sizes = 0.0, []
    while ctl.slow_start:
        permits = []
        while ctl.delay(1, now) == 0.0:
            permits.append(ctl.take(1, now))
        sizes.append(len(permits))
        now += latency
        for p in permits:
            ctl.on_answer(p, 1, None, now)
    return sizes


def test_answers_that_take_long_open_the_whole_window_after_the_first() -> None:
    assert _rounds(RateController(ceiling=50), latency=0.2) == [1]  # then 50 in flight
    assert _rounds(RateController(ceiling=50), latency=0.02) == [1, 25]  # quick answers: half first


def test_a_server_without_limits_at_llm_latency_runs_at_little_s_law_from_the_second_round() -> None:
    # 1,000 records, concurrency 50, 200 ms answers, nothing stated or enforced: the whole job
    # from its first answer at concurrency / latency (half a window for a round trip: 0.951)
    server = Server(1e9, headers=False)
    result = run([Job(RateController(ceiling=50), 1000, 1)], server, latency=0.2, jitter=0.0)
    sent = [t for t, _ in result.admitted]
    assert (len(sent) - 1) / (sent[-1] - sent[0]) >= 0.99 * 50 / 0.2


def test_the_first_cut_is_what_the_burst_let_through_not_the_first_answer_s_rate() -> None:
    ctl = RateController(ceiling=64)
    first = ctl.take(1, 0.0)
    ctl.on_answer(first, 1, None, 0.2)  # slow, nothing stated: the whole window opens
    burst = [ctl.take(1, 0.2) for _ in range(63)]
    for p in burst[40:]:  # a short bucket admitted 40: the rest are refused at once
        ctl.on_rate_limited(p, None, None, 0.201)
    assert ctl.delay(1, 0.3) > 0  # the burst is still answering: no rate to cut to yet
    for p in burst[:40]:
        ctl.on_answer(p, 1, None, 0.4)
    ctl.delay(1, 0.4)
    assert ctl.rpm is not None and 60 * 40 <= ctl.rpm <= 60 * 42  # not 60 × the one answer seen at the first 429


def test_short_buckets_without_headers_are_used_to_their_limit_at_llm_latency_too() -> None:
    for server in (Server(2400, headers=False), Server(2400, headers=False, retry_after=False)):
        result = run([Job(RateController(ceiling=64), 1200, 1)], server, latency=0.2, jitter=0.05)
        assert result.bucket_utilization(server) >= 0.95
        assert result.share_429 <= 0.03  # one burst into the bucket at the start, then a probe every few seconds
