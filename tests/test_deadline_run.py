"""`process --deadline` end to end against the simulator on 127.0.0.1: the split, every record
answered once across both paths, the deadline kept across kill -9."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, write_jsonl
from .test_batch_api import _env
from .test_process import run


def _args(sim: Any, inp: Path, *more: str) -> list[str]:
    return [str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", *more]


def _once(out: list[dict[str, Any]], n: int) -> bool:
    return Counter(o["custom_id"] for o in out) == Counter({f"r{i}": 1 for i in range(n)})


def test_an_ample_deadline_sends_everything_through_batches(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1000))
    res = run(_args(sim, inp, "--deadline", "25h", "--summary-json", str(tmp_path / "s.json")))
    assert res.exit_code == 0, res.output
    assert sim.stats.requests == 0 and sim.stats.batch_billed == 1000  # not one live request
    assert _once(read_results(tmp_path / "in.results.jsonl"), 1000)
    d = json.loads((tmp_path / "s.json").read_text())["deadline"]
    assert (d["live"], d["batch"], d["cancelled_batches"], d["given"]) == (0, 1000, 0, "25h")
    ckpt = json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())
    assert ckpt["deadline"]["given"] == "25h"
    res = run(_args(sim, inp, "--deadline", "2h"))  # a rerun cannot move the job's deadline
    assert res.exit_code == 0 and "--deadline 2h is ignored" in res.output
    again = json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())["deadline"]
    assert (again["at"], again["given"], again["plan"]) == (ckpt["deadline"]["at"], "25h", ckpt["deadline"]["plan"])
    assert sim.stats.requests == 0 and sim.stats.batch_billed == 1000
    res = CliRunner().invoke(app, ["status", str(inp), "--json"])
    st = json.loads(res.output)["deadline"]
    assert (st["given"], st["batch"], st["live"], st["met"]) == ("25h", 1000, 0, True)
    res = CliRunner().invoke(app, ["status", str(inp)])
    assert "met: 1000 record(s) answered through the Batch API, 0 live" in res.output


def test_a_tight_deadline_uses_both_paths_and_answers_each_record_once(tmp_path: Path, sim_factory: Any) -> None:
    # live 20 a second, batches 10 lines a second between them: neither alone is the cheapest on time
    sim = sim_factory(rpm=1200, batch_lines_per_s=10.0, batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(100))
    res = run(_args(sim, inp, "--deadline", "8s", "--rpm", "1200", "--summary-json", str(tmp_path / "s.json")))
    assert res.exit_code == 0, res.output
    assert _once(read_results(tmp_path / "in.results.jsonl"), 100)
    assert sim.stats.billed + sim.stats.batch_billed == 100  # no record answered twice, live or batch
    d = json.loads((tmp_path / "s.json").read_text())["deadline"]
    assert d["batch"] == sim.stats.batch_billed > 0 and d["live"] == sim.stats.billed > 0
    # a shard the deadline sends live says so (not --batch-expired live's words: the user set no such thing)
    assert "deadline: sending the" in res.output and "--batch-expired" not in res.output


def test_an_impossible_deadline_is_said_before_the_first_request_and_the_run_completes(
        tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(rpm=600, batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(40))
    res = run(_args(sim, inp, "--deadline", "2s", "--rpm", "600"))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    said = next(i for i, x in enumerate(lines) if "at the known limits this takes about" in x)
    assert re.search(r"the deadline is in [0-2] s", lines[said])  # 2 s from when it was fixed, less start-up
    sent = [i for i, x in enumerate(lines) if "submitted as" in x or "through the live API" in x]
    assert sent and said < min(sent)
    assert _once(read_results(tmp_path / "in.results.jsonl"), 40)
    assert sim.stats.billed + sim.stats.batch_billed == 40


def test_kill9_after_a_cancel_then_a_rerun_answers_every_record_once(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(rpm=1200, batch_lines_per_s=10.0, batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(100))
    cmd = [sys.executable, "-m", "batchrun", "process", *_args(sim, inp, "--deadline", "8s", "--rpm", "1200")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    batches = sim.sim.batches.batches
    for _ in range(6000):  # until the planner cancelled a batch (bounded: 60 s)
        if any(b["status"] in ("cancelling", "cancelled") for b in list(batches.values())) or proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    ckpt = json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())
    fixed = ckpt["deadline"]["at"]
    assert ckpt["deadline"]["cancelled"]  # killed after a cancel was decided
    res = run(_args(sim, inp, "--deadline", "8s", "--rpm", "1200"))
    assert res.exit_code == 0, res.output
    assert _once(read_results(tmp_path / "in.results.jsonl"), 100)
    assert sim.stats.billed + sim.stats.batch_billed == 100
    assert json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())["deadline"]["at"] == fixed


def test_a_deadline_plan_keeps_under_the_batch_queue(tmp_path: Path, sim_factory: Any) -> None:
    from .test_batch_queue import _sim_tokens

    rows = plain_records(400)
    limit = _sim_tokens(rows) * 25 // 100  # the queue holds a quarter of the job's tokens
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=limit)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    # stated: the plan sees the queue from the start and never asks past it
    res = run(_args(sim, inp, "--deadline", "25h", "--batch-queue-tokens", str(limit)))
    assert res.exit_code == 0, res.output
    assert _once(read_results(tmp_path / "in.results.jsonl"), 400)
    assert sim.stats.batches_refused_queue == 0 and sim.stats.requests == 0
    assert sim.stats.batch_billed == 400


def test_a_deadline_plan_learns_the_queue_from_a_refusal_and_fails_no_line(tmp_path: Path, sim_factory: Any) -> None:
    from .test_batch_queue import _sim_tokens

    rows = plain_records(400)
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=_sim_tokens(rows) * 25 // 100)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = run(_args(sim, inp, "--deadline", "25h"))
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert _once(out, 400) and all(o["error"] is None for o in out)  # a refusal for the queue fails no line
    # the first wave goes before the limit is known (the plan lets its choice through); the limit
    # learned from its refusals, no batch is refused again: at most one refusal per shard
    assert 1 <= sim.stats.batches_refused_queue <= 10
    assert sim.stats.batch_billed + sim.stats.requests == 400  # every record paid for once
