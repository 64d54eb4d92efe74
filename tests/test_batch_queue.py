"""The Batch API at a real account's quotas: the enqueued-token limit (learned, stated, split to
fit), the batches-per-hour 429, and --max-cost reserved per shard; against the simulator on
127.0.0.1."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from batchrun.sim.answers import read_ask

from .conftest import plain_records, read_results, write_jsonl
from .test_process import run

MODEL = "gpt-4o-mini"


def _sim_tokens(rows: list[dict[str, Any]]) -> int:
    """The prompt tokens the simulator counts for these plain records (one user message each)."""
    return sum(read_ask({"messages": [{"role": "user", "content": r["text"]}]}).prompt_tokens for r in rows)


def _run(sim: Any, inp: Path, *args: str) -> Any:
    return run([str(inp), "--base-url", sim.url, "--model", MODEL, "--batch-api", "--quiet",
                "--summary-json", str(inp.with_suffix(".summary.json")), *args])


def _once_and_succeeded(out: list[dict[str, Any]], n: int) -> None:
    assert Counter(o["custom_id"] for o in out) == Counter({f"r{i}": 1 for i in range(n)})
    assert all(o["error"] is None and o["response"]["status_code"] == 200 for o in out)


def test_a_queue_of_two_and_a_half_shards_runs_every_record_once(tmp_path: Path, sim_factory: Any) -> None:
    rows = plain_records(6000)
    limit = _sim_tokens(rows) * 25 // 120  # 2.5 shards of 500
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=limit)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = _run(sim, inp, "--batch-size", "500")
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 6000)
    st = sim.stats
    assert st.requests == 0  # no live request
    assert st.batch_billed == 6000  # every line billed once
    assert st.batches_refused_queue <= 3
    assert st.batches_created == 12 + st.batches_refused_queue


def test_a_shard_over_the_whole_queue_is_split_and_done(tmp_path: Path, sim_factory: Any) -> None:
    rows = plain_records(200)
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=_sim_tokens(rows) * 4 // 10)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = _run(sim, inp, "--batch-size", "200")  # one shard, 2.5 times the queue, limit not stated
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 200)
    summ = json.loads((tmp_path / "in.summary.json").read_text())
    assert summ["batches"][0]["phase"] == "split" and len(summ["batches"]) > 3
    assert sim.stats.batch_billed == 200 and sim.stats.requests == 0


def test_a_stated_limit_splits_before_the_first_batch(tmp_path: Path, sim_factory: Any) -> None:
    rows = plain_records(150)
    limit = _sim_tokens(rows) // 2
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=limit)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    # stated under the real limit: the shard is split before anything is sent, and nothing is refused
    res = _run(sim, inp, "--batch-size", "150", "--batch-queue-tokens", str(limit * 7 // 10))
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 150)
    assert sim.stats.batches_refused_queue == 0


def test_max_cost_below_the_batch_cost_stops_unsubmitted_and_resumes(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(600))
    args = ("--batch-size", "100", "--max-tokens", "20", "--batch-queue-tokens", "1000000")
    res = _run(sim, inp, *args, "--max-cost", "0.002")
    assert res.exit_code == 3, res.output
    summ = json.loads((tmp_path / "in.summary.json").read_text())
    assert 0 < summ["total_cost_usd"] <= 0.002  # never more spent than the cap
    unsent = [b for b in summ["batches"] if b["batch_id"] is None]
    assert unsent and sim.stats.batches_created == 6 - len(unsent)
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 600 - 100 * len(unsent)  # the shards not covered wrote nothing
    res = _run(sim, inp, *args, "--max-cost", "1")
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 600)
    assert sim.stats.batches_created == 6 and sim.stats.batch_billed == 600


def test_no_wait_exits_75_while_shards_wait_and_status_shows_the_queue(tmp_path: Path, sim_factory: Any) -> None:
    from typer.testing import CliRunner

    from batchrun.cli import app

    rows = plain_records(300)
    limit = _sim_tokens(rows) * 15 // 30  # 1.5 shards of 100
    sim = sim_factory(batch_step_s=0.3, batch_queue_tokens=limit)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    codes = []
    for _ in range(400):  # cron: run again until done (bounded), every 0.05 s: a rerun alone takes
        # milliseconds, far less than a batch's steps
        codes.append(_run(sim, inp, "--batch-size", "100", "--no-wait", "--batch-queue-tokens",
                          str(limit)).exit_code)  # stated: one shard at a time
        if codes[-1] != 75:
            break
        time.sleep(0.05)
        if len(codes) == 1:
            st = json.loads(CliRunner().invoke(app, ["status", str(inp), "--json"]).output)
            (q,) = st["batch_queues"]
            assert (q["model"], q["limit_source"], q["waiting"]) == (MODEL, "stated", 2) and q["held"] > 0
            text = CliRunner().invoke(app, ["status", str(inp)]).output
            assert f"batch queue {MODEL}: limit {q['limit']:,} tokens" in text
    assert codes[-1] == 0 and set(codes[:-1]) == {75}, codes
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 300)
    assert sim.stats.batch_billed == 300 and sim.stats.batches_refused_queue == 0


def test_batches_per_hour_429_waits_out_its_retry_after(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=0.05, batches_per_hour=2, batch_hour_s=0.5)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(50))
    res = _run(sim, inp, "--batch-size", "10", "--batch-queue-tokens", "1000000")
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 50)
    assert sim.stats.batches_rate_limited >= 1 and sim.stats.batches_created == 5


def _per_shard(batches: list[dict[str, Any]]) -> tuple[Counter[str], int]:
    """Batches that ran, by shard (refused ones apart), and how many were refused for the queue."""
    ran: Counter[str] = Counter()
    refused = 0
    for b in batches:
        codes = [e.get("code") for e in ((b.get("errors") or {}).get("data") or [])]
        if "token_limit_exceeded" in codes:
            refused += 1
        else:
            ran[(b.get("metadata") or {}).get("batchrun_shard")] += 1
    return ran, refused


def test_kill_9_during_a_queue_bound_job_then_one_run_to_the_end(tmp_path: Path, sim_factory: Any) -> None:
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    rows = plain_records(900)
    sim = sim_factory(batch_step_s=0.1, batch_queue_tokens=_sim_tokens(rows) * 25 // 60)  # 2.5 shards of 150
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("BATCHRUN_", "OPENAI_"))},
           "BATCHRUN_API_KEY": "k", "BATCHRUN_RETRY_BASE": "0.01"}
    cmd = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", sim.url, "--model", MODEL,
           "--batch-api", "--batch-size", "150", "--quiet", "--summary-json", str(tmp_path / "s.json")]
    rng = random.Random(7)
    st = sim.stats
    for _ in range(3):  # each run killed after a random number of the provider's calls more
        target = st.files_uploaded + st.batches_created + rng.randint(1, 4)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(4000):  # bounded: 20 s at most
            if st.files_uploaded + st.batches_created >= target or proc.poll() is not None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 900)
    ran, refused = _per_shard(list(sim.sim.batches.batches.values()))
    shards = [b for b in json.loads((tmp_path / "s.json").read_text())["batches"] if b["phase"] != "split"]
    assert set(ran.values()) == {1} and len(ran) == len(shards)  # no shard's batch made twice
    assert st.batches_created <= len(shards) + refused
    assert st.batch_billed == 900 and st.requests == 0


def test_batches_lists_the_jobs_batches_and_cancel_keeps_what_they_answered(tmp_path: Path,
                                                                             sim_factory: Any) -> None:
    from typer.testing import CliRunner

    from batchrun.cli import app

    sim = sim_factory(batch_step_s=1.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(90))
    assert _run(sim, inp, "--batch-size", "30", "--no-wait", "--batch-queue-tokens", "100000").exit_code == 75
    env = {"BATCHRUN_API_KEY": "k"}
    res = CliRunner().invoke(app, ["batches", str(inp), "--json"], env=env)  # the job's own base URL
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert [(b["shard"], b["status"]) for b in listed["batches"]] == [(f"s000{i}", "validating") for i in (1, 2, 3)]
    assert all(b["tokens_queued"] > 0 and b["model"] == MODEL for b in listed["batches"])
    res = CliRunner().invoke(app, ["batches", str(inp), "--base-url", sim.url, "--cancel"], env=env)
    assert res.exit_code == 0, res.output
    assert "cancelled 3 running batch(es)" in res.output
    res = _run(sim, inp, "--batch-size", "30")
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 90)
    summ = json.loads((tmp_path / "in.summary.json").read_text())
    assert [b["status"] for b in summ["batches"][:3]] == ["cancelled"] * 3 and sim.stats.batch_billed == 90


def test_a_refusal_for_the_queue_is_posted_to_notify(tmp_path: Path, sim_factory: Any) -> None:
    from .test_notify import receiving

    rows = plain_records(200)
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=_sim_tokens(rows) * 4 // 10)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    with receiving() as (rec, url):
        res = _run(sim, inp, "--batch-size", "200", "--notify", url)  # one shard over the queue: refused once
    assert res.exit_code == 0, res.output
    assert sim.stats.batches_refused_queue >= 1
    refused = [b for _, b, _ in rec.got if b["event"] == "batch_queue_refused"]
    assert len(refused) == sim.stats.batches_refused_queue
    assert refused[0]["model"] == MODEL and "enqueued-token limit" in refused[0]["text"]
    assert rec.events()[-1] == "job_complete"
