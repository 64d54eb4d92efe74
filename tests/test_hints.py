"""Every hint printed at a stop is a command that continues the job when followed: never one
that starts it over (--fresh) or re-sends work (--retry-failed). Followed here, at a real
simulator that counts what it receives."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.job.resume import resume_argv, with_option

from .conftest import plain_records, read_results, write_jsonl
from .test_cost import ENV
from .test_resume import env, start, wait_for_lines


def _hint(stderr: str, lead: str) -> list[str]:
    """The command a hint prints after `lead`, as argv for `python -m batchrun`."""
    m = re.search(re.escape(lead) + r"\s*(batchrun .+?)(?: \(exit 75|\n|$)", " ".join(stderr.split()))
    assert m, stderr
    words = shlex.split(m.group(1))
    assert "--fresh" not in words and "--retry-failed" not in words, words
    return words[1:]


def test_one_shot_flags_leave_the_command_and_a_cap_is_replaced() -> None:
    argv = ["process", "in.jsonl", "--fresh", "--retry-failed", "--max-cost=1", "--model", "m", "--", "--fresh"]
    assert resume_argv(argv) == ["process", "in.jsonl", "--max-cost=1", "--model", "m", "--", "--fresh"]
    assert with_option(["process", "x", "--max-cost", "1", "-q"], "--max-cost", "2") == [
        "process", "x", "-q", "--max-cost", "2"]


def test_interrupt_of_a_fresh_run_hints_a_resume_that_sends_nothing_twice(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=150)
    rows = plain_records(80)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--concurrency", "6"]
    first = start(args)  # the user's first attempt, stopped
    wait_for_lines(out, 6, first)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    sent_before = sim.stats.requests
    second = start([*args, "--fresh"])  # the second attempt, started over on purpose, then stopped
    while not list(tmp_path.glob("in.results.jsonl.*.old")):  # the first attempt's lines moved aside
        assert second.poll() is None, second.communicate()
        time.sleep(0.02)
    wait_for_lines(out, 6, second)
    second.send_signal(signal.SIGINT)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 130, err
    done = len(read_results(out))
    hint = _hint(err, "to resume, run:")
    st = json.loads(subprocess.run([sys.executable, "-m", "batchrun", "status", str(inp), "--json"], env=env(),
                                   capture_output=True, text=True, timeout=60).stdout)
    assert st["next"] == f"run {shlex.join(['batchrun', *hint])} again to resume"  # status says the same
    third = subprocess.run([sys.executable, "-m", "batchrun", *hint], env=env(), capture_output=True, text=True,
                           timeout=60)
    assert third.returncode == 0, third.stderr
    assert "moved the old output" not in third.stderr
    assert f"resuming: {done} record(s) already done" in third.stderr  # the count goes on
    results = read_results(out)
    assert sorted(r["custom_id"] for r in results) == sorted(str(r["id"]) for r in rows)
    assert sim.stats.requests - sent_before == len(rows)  # since --fresh: each record sent once


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(sys, "argv", ["batchrun", *args])  # the hint repeats the command line
    return CliRunner().invoke(app, args, env=ENV, catch_exceptions=False)


def test_budget_stop_of_a_fresh_run_hints_a_raised_cap_that_goes_on(
    tmp_path: Path, sim_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = sim_factory(latency_ms=5)
    prices = tmp_path / "p.toml"
    prices.write_text('[models."m"]\ninput = 1000\noutput = 1000\n')
    rows = [{"custom_id": f"r{i}", "max_tokens": 10, "messages": [{"role": "user", "content": f"word {i} " * 10}]}
            for i in range(40)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    base = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--prices", str(prices),
            "--concurrency", "2", "--progress-interval", "60"]
    assert _cli(base, monkeypatch).exit_code == 0  # a first attempt, then the user starts over
    res = _cli([*base, "--fresh", "--max-cost", "0.3"], monkeypatch)
    assert res.exit_code == 3, res.output
    assert "error: --max-cost $0.3 reached" in res.output and "warning: --max-cost" not in res.output
    done = len(read_results(tmp_path / "in.results.jsonl"))
    assert 0 < done < 40
    sent = sim.stats.requests
    hint = _hint(res.output, "for example (twice the cap):")
    assert hint[-2:] == ["--max-cost", "0.6"]
    res = _cli(hint, monkeypatch)
    assert res.exit_code in (0, 3), res.output
    assert f"resuming: {done} record(s)" in res.output and "moved the old output" not in res.output
    after = read_results(tmp_path / "in.results.jsonl")
    assert len(after) > done and len({r["custom_id"] for r in after}) == len(after)
    assert sim.stats.requests - sent == len(after) - done  # nothing sent twice


def test_a_live_run_on_pending_batches_hints_the_collecting_command(
    tmp_path: Path, sim_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = sim_factory(batch_step_s=30.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(10))
    base = ["process", str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--progress-interval", "60"]
    res = _cli([*base, "--fresh", "--batch-api", "--no-wait"], monkeypatch)
    assert res.exit_code == 75, res.output
    assert sim.stats.batches_created == 1
    _hint(res.output, "collect them later with:")  # the --no-wait hint: no --fresh in it
    res = _cli([*base, "--fresh"], monkeypatch)  # live, starting over: refused, batches may run
    assert res.exit_code == 2
    res = _cli(base, monkeypatch)  # live: refused, and told what works
    assert res.exit_code == 2 and "not yet collected" in res.output
    hint = _hint(res.output, "collect them with:")
    assert "--batch-api" in hint
    res = _cli([*hint, "--no-wait"], monkeypatch)  # followed: it collects; submits nothing again
    assert res.exit_code == 75 and sim.stats.batches_created == 1, res.output


def test_a_quiet_run_stopped_by_a_signal_still_says_how_to_resume(tmp_path: Path, sim_factory) -> None:
    # cron runs with --quiet and is stopped by SIGTERM: its log must keep the command that goes on
    sim = sim_factory(latency_ms=150)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(60))
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--concurrency", "4", "--quiet"]
    proc = start(args)
    wait_for_lines(out, 4, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    again = _hint(err, "to resume, run:")
    assert "--quiet" in again and str(inp) in again
