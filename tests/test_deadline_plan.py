"""The deadline planner: pure decisions on a fake clock (plain numbers for times)."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import JobStats, ModelStats
from batchrun.cli import app
from batchrun.job.batch_api.deadline import look_s
from batchrun.job.batch_api.deadline_figures import alternatives
from batchrun.route.batch_pace import BatchPace
from batchrun.route.deadline import (
    PRIOR_BATCH_LPS,
    Paths,
    Running,
    fastest_split,
    live_rate,
    plan,
    replan,
)

from .conftest import plain_records, write_jsonl

T0 = 1_000_000.0
H = 3600.0


def prior(live_cost: float | None = 2.0, batch_cost: float | None = 1.0) -> Paths:
    return Paths(live_rps=live_rate(None, None, 300), batch_lps=PRIOR_BATCH_LPS, live_cost=live_cost,
                 batch_cost=batch_cost)


def tight(**kw: float | None) -> Paths:
    """The issue's tight floor: live 3,000 RPM, batches 20 lines a second, a second of overhead."""
    return Paths(**{"live_rps": 50.0, "batch_lps": 20.0, "batch_overhead_s": 1.0, "live_cost": 2.0,  # type: ignore[arg-type]
                    "batch_cost": 1.0, "batch_known": True, "live_known": True, **kw})


def test_an_ample_deadline_sends_everything_through_batches() -> None:
    p = plan(1000, T0, T0 + 25 * H, 2.5 * H, prior())
    assert (p.to_batch, p.to_live, p.impossible) == (1000, 0, False)
    assert p.finish_at <= T0 + 25 * H
    assert p.cost_usd == 1.0 and p.all_live_usd == 2.0 and p.all_batch_usd == 1.0
    assert "1000 record(s) through the Batch API and 0 live" in p.says()


def test_a_tight_deadline_splits_at_the_cheapest_split_on_time() -> None:
    p = plan(3000, T0, T0 + 75, 7.5, tight())
    # batches answer 20/s for 66.5 s after their overhead: 1,330; the rest live in 33 s
    assert p.to_batch == 1330 and p.to_live == 1670
    assert not p.impossible and p.finish_at <= T0 + 75 - 7.5
    assert p.cost_usd is not None and 1.0 < p.cost_usd < 2.0


def test_an_impossible_deadline_says_how_long_it_takes_and_runs_the_fastest_split() -> None:
    # 11 h of work at the known limits, 8 h given
    paths = Paths(live_rps=1.0, batch_lps=0.0, live_cost=1.0, batch_cost=0.5)
    p = plan(int(11 * H), T0, T0 + 8 * H, 0.8 * H, paths)
    assert p.impossible and p.to_live == int(11 * H)
    assert p.says() == ("at the known limits this takes about 11 h; the deadline is in 8 h: "
                        "running at full speed on both paths")


def test_unknown_prices_plan_on_time_only() -> None:
    p = plan(3000, T0, T0 + 25 * H, 0, tight(batch_cost=None))
    assert not p.on_cost and p.cost_usd is None and p.all_batch_usd is None
    n_batch, secs = fastest_split(3000, tight())
    assert p.to_batch == n_batch and p.finish_at == T0 + secs  # the earliest finish, not all-batch


def test_batches_no_cheaper_are_no_reason_to_wait() -> None:
    p = plan(3000, T0, T0 + 25 * H, 0, tight(batch_cost=2.0))
    assert not p.on_cost and p.finish_at - T0 < 60


def test_a_queue_limit_slows_the_batch_path() -> None:
    free, queued = tight(), tight(queue_records=100)
    assert queued.batch_pace() < free.batch_pace()
    assert plan(3000, T0, T0 + 75, 7.5, queued).to_batch < plan(3000, T0, T0 + 75, 7.5, free).to_batch


@given(n=st.integers(0, 100_000), span=st.floats(1, 40 * H), share=st.floats(0, 0.9),
       rps=st.floats(0.01, 1000), lps=st.floats(0, 1000), over=st.floats(0, 2 * H),
       costs=st.sampled_from([(2.0, 1.0), (1.0, 1.0), (None, 1.0), (2.0, None)]))
def test_any_plan_places_every_record_once_and_is_on_time_when_it_can_be(
        n: int, span: float, share: float, rps: float, lps: float, over: float,
        costs: tuple[float | None, float | None]) -> None:
    paths = Paths(live_rps=rps, batch_lps=lps, batch_overhead_s=over, live_cost=costs[0], batch_cost=costs[1])
    p = plan(n, T0, T0 + span, share * span, paths)
    assert p.to_batch + p.to_live == n and 0 <= p.to_batch <= n
    _, full = fastest_split(n, paths)
    assert p.impossible == (T0 + full > T0 + span)
    if not p.impossible:
        assert p.finish_at <= T0 + span + 1e-6 * span + 1 / rps  # a record's rounding at most
    if p.on_cost and p.cost_usd is not None and paths.live_cost is not None:
        assert p.cost_usd <= paths.live_cost + 1e-9


def test_running_batches_keep_their_lines_while_live_could_still_take_the_shortfall() -> None:
    running = tuple(Running(f"b{i}", 300, 10) for i in range(10))  # 2,900 unanswered
    early = replan(T0 + 2, T0 + 75, 7.5, tight(), 0, running, ())
    assert early.shortfall > 0 and early.cancel == ()  # live could take it all later: wait and see
    late = replan(T0 + 30, T0 + 75, 7.5, tight(), 0, tuple(Running(f"b{i}", 300, 70) for i in range(10)), ())
    # 2,300 left, batches answer ~20/s x 37.5 s: the shortfall must go live now
    assert late.cancel and not late.impossible
    cancelled = sum(300 - 70 for _ in late.cancel)
    assert late.shortfall <= cancelled < late.shortfall + 230


def test_past_the_deadline_live_takes_its_share_of_slow_batches() -> None:
    # seen on the simulator: the deadline gone, live (10/s) idle for 34 s while batches answered
    # their last 172 lines at 5 a second; the fastest finish moves two thirds of them live
    paths = Paths(live_rps=10.0, batch_lps=5.0, batch_overhead_s=1.0, batch_known=True, live_known=True)
    running = tuple(Running(f"b{i}", 40, 40 - n) for i, n in enumerate((40, 40, 40, 32, 20)))  # 172 unanswered
    m = replan(T0 + 5, T0, 1.0, paths, 0, running, ())
    moved = sum(b.unanswered for b in running if b.id in m.cancel)
    assert 172 * 10 / 15 - 1 <= moved < 172  # live's share; the rest stays in batches, both paths busy


def test_shards_not_yet_submitted_go_live_before_any_cancel() -> None:
    running = (Running("b0", 300, 200),)
    m = replan(T0 + 40, T0 + 75, 7.5, tight(), 0, running, (("s1", 300), ("s2", 300), ("s3", 300)))
    assert set(m.submit) | set(m.hold) == {"s1", "s2", "s3"} and not set(m.submit) & set(m.hold)
    assert m.hold and m.cancel == ()


def test_before_the_pace_is_seen_shards_are_tried_while_live_could_take_them_over() -> None:
    unknown = tight(batch_known=False)
    waiting = tuple((f"s{i}", 300) for i in range(10))
    m = replan(T0, T0 + 75, 7.5, unknown, 0, (), waiting, look_s=3)
    assert m.submit == tuple(f"s{i}" for i in range(10)) and m.cancel == ()  # 60 s of live covers all 3,000
    m = replan(T0, T0 + 40, 4, unknown, 0, (), waiting, look_s=3)
    assert m.hold and len(m.submit) == 5  # live could take over 1,650 at most: the rest goes live now
    running = tuple(Running(f"b{i}", 300, 0) for i in range(10))
    assert replan(T0 + 1, T0 + 75, 7.5, unknown, 0, running, (), look_s=3).cancel == ()
    assert replan(T0 + 5, T0 + 75, 7.5, unknown, 0, running, (), look_s=3).cancel  # unseen pace: nothing counted on


def test_when_live_cannot_take_them_waiting_shards_are_still_submitted() -> None:
    m = replan(T0, T0 + 10, 0, tight(), 1000, (), (("s1", 300), ("s2", 300)))
    assert m.impossible and m.submit == ("s1", "s2") and m.hold == ()


@given(st.lists(st.tuples(st.integers(1, 500), st.integers(0, 500)), max_size=12), st.floats(0, 80),
       st.integers(0, 3000))
def test_a_replan_never_cancels_without_a_shortfall_and_covers_it_when_it_does(
        batches: list[tuple[int, int]], at: float, live_left: int) -> None:
    running = tuple(Running(f"b{i}", lines, min(lines, done)) for i, (lines, done) in enumerate(batches))
    m = replan(T0 + at, T0 + 75, 7.5, tight(), live_left, running, ())
    assert len(set(m.cancel)) == len(m.cancel)
    if m.shortfall == 0:
        assert m.cancel == ()
    freed = sum(b.unanswered for b in running if b.id in m.cancel)
    if m.cancel and not m.impossible:
        assert freed >= m.shortfall


def test_the_pace_is_lines_over_time_of_running_batches() -> None:
    pace = BatchPace()
    assert pace.lines_per_s() is None and pace.overhead_s() is None
    pace.submitted(T0)
    pace.look(T0 + 0.5, 0, True)
    pace.look(T0 + 1.0, 10, True)
    pace.look(T0 + 3.0, 50, True)
    assert pace.lines_per_s() == 50 / 2.5
    assert pace.overhead_s() == 2.0
    pace.look(T0 + 4.0, 50, False)  # nothing running: no pace from idle time
    pace.look(T0 + 100.0, 50, True)
    assert pace.lines_per_s() is None
    pace.look(T0 + 102.0, 90, True)
    assert pace.lines_per_s() == 20.0


def _estimate(tmp_path: Path, *args: str) -> tuple[int, str]:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1000))
    res = CliRunner().invoke(app, ["estimate", str(inp), *args])
    return res.exit_code, res.output


def test_estimate_prints_the_plan_before_anything_is_sent(tmp_path: Path) -> None:
    code, out = _estimate(tmp_path, "--model", "gpt-4o-mini", "--deadline", "25h", "--json")
    assert code == 0
    d = orjson.loads(out)["deadline"]
    assert (d["to_batch"], d["to_live"], d["impossible"], d["planned_on"]) == (1000, 0, False, "cost")
    assert d["cost_max_usd"] == d["all_batch_cost_usd"][1] < d["all_live_cost_usd"][1]
    code, out = _estimate(tmp_path, "--model", "gpt-4o-mini", "--deadline", "25h")
    assert code == 0 and "plan: 1000 record(s) through the Batch API and 0 live" in out
    assert "all live: $" in out and "from the prior" in out


def test_estimate_says_an_impossible_deadline(tmp_path: Path) -> None:
    code, out = _estimate(tmp_path, "--model", "gpt-4o-mini", "--deadline", "60s", "--rpm", "60")
    assert code == 0
    # 1,000 records at 1 a second live, batches after their prior 10 min: about 10 min at full speed
    assert "at the known limits this takes about 10 min; the deadline is in 60 s" in " ".join(out.split())


def test_estimate_with_an_unknown_price_plans_on_time_only(tmp_path: Path) -> None:
    code, out = _estimate(tmp_path, "--model", "no-such-model-x", "--deadline", "2h", "--rpm", "6000", "--json")
    d = orjson.loads(out)["deadline"]
    assert code == 0 and d["planned_on"] == "time only" and d["cost_max_usd"] is None
    assert d["to_live"] == 1000  # 10 s live beats the Batch API's prior overhead


def test_estimate_refuses_a_bad_deadline_in_one_sentence(tmp_path: Path) -> None:
    code, out = _estimate(tmp_path, "--model", "gpt-4o-mini", "--deadline", "next week")
    assert code == 2 and out.count("\n") == 1 and "invalid deadline from --deadline" in out
    code, out = _estimate(tmp_path, "--model", "gpt-4o-mini", "--deadline", "2020-01-01T00:00Z")  # as process says
    assert code == 2 and out.count("\n") == 1 and "2020-01-01T00:00:00Z is already past" in out


def test_process_refuses_a_deadline_gone_by_before_any_file_is_made(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    res = CliRunner().invoke(app, ["process", str(inp), "--simulate", "--deadline", "2020-01-01T00:00Z"])
    assert res.exit_code == 2 and "is already past" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no output, checkpoint or shards


def test_looks_are_often_near_the_deadline_and_seldom_a_day_before() -> None:
    assert look_s(75) == 1.0 and look_s(1000) == 10.0 and look_s(25 * H) == 60.0 and look_s(-5) == 1.0


def test_the_cost_against_both_alternatives_is_the_same_tokens_at_each_price() -> None:
    stats = JobStats()
    m = stats.models.setdefault("gpt-4o-mini", ModelStats())
    m.input_tokens, m.output_tokens = 1_000_000, 1_000_000
    got = alternatives(stats, PriceBook())
    assert got["all_live_usd"] == 0.15 + 0.6 and got["all_batch_usd"] == 0.075 + 0.3  # genai-prices' gpt-4o-mini
    unknown = JobStats()
    unknown.models.setdefault("no-such-model-x", ModelStats()).input_tokens = 10
    assert alternatives(unknown, PriceBook()) == {"cost_usd": 0.0, "all_live_usd": None, "all_batch_usd": None}
