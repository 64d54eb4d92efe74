"""Resume and cron: kill -9 at random moments, clean drains on SIGTERM/SIGINT, job identity,
locks, --retry-failed and `status`, all with real subprocesses against a loopback server."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import plain_records, read_results, write_jsonl

KEY = "sk-resume-test-key"


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    e.update({"BATCHRUN_API_KEY": KEY, "BATCHRUN_RETRY_BASE": "0.01"}, **extra)
    return e


def start(args: list[str], **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "batchrun", *args], env=env(**extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batchrun", *args], env=env(),
                          capture_output=True, text=True, timeout=timeout)


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.returncode} {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for output lines")


def check_exactly_once(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = read_results(out)
    ids = [r["custom_id"] for r in results]
    assert len(ids) == len(set(ids)) == len(rows), (len(ids), len(set(ids)), len(rows))
    text = {str(r["id"]): r["text"] for r in rows}
    for r in results:
        assert r["error"] is None, r
        # the simulator's completion id is a digest of the prompt: the line belongs to its record
        digest = hashlib.blake2b(text[r["custom_id"]].encode(), digest_size=8).hexdigest()
        assert r["response"]["body"]["id"] == "chatcmpl-" + digest
    return results


def test_kill_9_at_random_moments_leaves_every_line_exactly_once(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=20, jitter_ms=15, seed=5)
    rows = plain_records(300)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--concurrency", "8"]
    rng = random.Random(11)
    kills = starts = 0
    # kill once the output has reached a line count drawn at random: any moment of the run
    # (mid-write, between checkpoints), reached by waiting on the output, not on the clock; the
    # targets lie far enough apart that every run writes lines of its own before it is killed
    # (bench/batch_kill.py kills 40 times; four here keep the suite short)
    for target in [30 + 65 * i + rng.randrange(30) for i in range(4)]:
        proc = start(args)
        starts += 1
        wait_for_lines(out, target, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        kills += 1
    final = run(args)
    assert final.returncode == 0, final.stderr
    check_exactly_once(out, rows)
    resent = sum(sim.stats.by_prompt.values()) - len(rows)
    assert 0 <= resent <= kills * 8  # at most the concurrency per kill
    st = json.loads(run(["status", str(inp), "--json"]).stdout)
    assert st["state"] == "complete" and st["records"]["done"] == 300 and st["runs"] == starts + 1


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_signal_drains_in_flight_and_rerun_sends_zero_duplicates(
    tmp_path: Path, sim_factory, sig: signal.Signals, code: int
) -> None:
    sim = sim_factory(latency_ms=300)
    rows = plain_records(50)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--concurrency", "10",
            "--progress-interval", "0.2"]
    proc = start(args)
    wait_for_lines(out, 10, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == code, stderr
    assert "to resume, run: batchrun process" in stderr
    written = len(read_results(out))
    assert written < 50
    assert sim.stats.ok == written  # every request sent was finished and written
    status = json.loads(run(["status", str(inp), "--json"]).stdout)
    assert status["state"] == "stopped" and status["resumable"] is True
    assert status["records"]["done"] == written and status["records"]["remaining"] == 50 - written
    final = run([*args, "--concurrency", "60"])  # not part of the job's identity: it may change
    assert final.returncode == 0, final.stderr
    check_exactly_once(out, rows)
    assert set(sim.stats.by_prompt.values()) == {1}  # zero duplicate requests


def test_second_ctrl_c_stops_at_once_and_state_stays_consistent(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=300, jitter_ms=290, seed=2)  # a drain that does not end at once
    rows = plain_records(48)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--concurrency", "16",
            "--drain-timeout", "60"]
    proc = start(args)
    wait_for_lines(out, 20, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    seen = []
    # the second signal only once the first was handled: two sent back to back to a process the
    # kernel has not yet scheduled arrive as one
    while not seen or not seen[-1].startswith("stopping:"):
        seen.append(proc.stderr.readline())
        assert seen[-1], seen
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "abandoned" in err and "stopped cleanly" not in err  # it says what happened
    final = run(args)
    assert final.returncode == 0, final.stderr
    check_exactly_once(out, rows)


def test_changed_input_or_options_refused_and_fresh_moves_output_aside(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    rows = plain_records(10)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    base = ["process", str(inp), "--base-url", sim.url, "--quiet"]
    assert run([*base, "--model", "m"]).returncode == 0
    res = run([*base, "--model", "other"])
    assert res.returncode == 2 and "model" in res.stderr and "--fresh" in res.stderr
    assert "Traceback" not in res.stderr
    write_jsonl(inp, rows + plain_records(1, prefix="new"))
    res = run([*base, "--model", "m"])
    assert res.returncode == 2 and "changed since this job started" in res.stderr
    requests_before = sim.stats.requests
    res = run([*base, "--model", "m", "--fresh"])
    assert res.returncode == 0, res.stderr
    assert sim.stats.requests == requests_before + 11
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("in.results.jsonl.") and p.name.endswith(".old")]
    assert aside and len(read_results(aside[0])) == 10  # the old output is kept, not deleted
    assert len(read_results(tmp_path / "in.results.jsonl")) == 11


def test_foreign_output_is_not_overwritten(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    (tmp_path / "in.results.jsonl").write_text("precious\n")
    res = run(["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet"])
    assert res.returncode == 2 and "no batchrun checkpoint" in res.stderr
    assert (tmp_path / "in.results.jsonl").read_text() == "precious\n"


def test_second_process_on_same_job_refuses(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=200)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(100))
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--concurrency", "2"]
    first = start(args)
    try:
        wait_for_lines(out, 1, first)
        second = run(args)
        assert second.returncode == 75  # busy, not broken: a cron monitor tells it from a config error
        assert f"PID {first.pid} on " in second.stderr and "running since 20" in second.stderr
        assert "running this job" in second.stderr and "to go on, run: batchrun process" in second.stderr
        st = json.loads(run(["status", str(inp), "--json"]).stdout)
        assert st["state"] == "running" and st["active_pid"] == first.pid
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)


def test_stale_lock_from_killed_run_is_taken_over(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=100)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(60))
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--concurrency", "4"]
    proc = start(args)
    wait_for_lines(out, 4, proc)
    proc.kill()
    proc.communicate(timeout=10)
    assert (tmp_path / "in.results.jsonl.lock").exists()
    st = json.loads(run(["status", str(inp), "--json"]).stdout)
    assert st["state"] == "killed" and st["resumable"] is True
    res = run(args)
    assert res.returncode == 0, res.stderr
    assert f"stale lock left by PID {proc.pid}" in res.stderr


def test_retry_failed_resends_only_error_lines(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(fail_first=2, fail_kinds=("500",))
    rows = plain_records(6)
    inp = write_jsonl(tmp_path / "in.jsonl", rows + ["{broken"])
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--max-attempts", "1"]
    assert run(args).returncode == 1
    assert sum(1 for r in read_results(out) if r["error"] and r["error"]["code"] == "server_error") == 6
    assert run(args).returncode == 1  # a plain rerun of a complete job sends nothing
    assert sim.stats.requests == 6
    res = run([*args, "--retry-failed"])
    assert res.returncode == 1  # second attempt per record still fails (fail_first=2)
    res = run([*args, "--retry-failed"])
    assert res.returncode == 1  # only the invalid line is left as an error
    results = read_results(out)
    assert len(results) == 7
    assert sum(1 for r in results if r["error"] is None) == 6
    assert [r["custom_id"] for r in results if r["error"]] == ["line-7"]
    assert sim.stats.requests == 18
    st = json.loads(run(["status", str(inp), "--json"]).stdout)
    assert st["records"] | {} == {"total": 7, "done": 7, "succeeded": 6, "failed": 0, "invalid": 1,
                                  "remaining": 0}


def test_stop_lets_go_of_records_waiting_on_the_rate_limit(tmp_path: Path, sim_factory) -> None:
    """A clean stop must not wait for records that were never sent (held by the limiter)."""
    sim = sim_factory(rpm=60, latency_ms=20)  # one a second, stated in the headers
    rows = plain_records(200)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--concurrency", "16"]
    proc = start(args)
    wait_for_lines(out, 3, proc)  # the limit is known: workers now wait on the limiter
    sent = sim.stats.requests
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 143
    assert sim.stats.requests <= sent + 1  # the held records were let go, not sent at one a second
    assert sim.stats.ok == len(read_results(out))  # everything sent was written
