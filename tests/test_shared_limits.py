"""--shared-limits: several real processes on one key share its limit through a real
redis-server (started here on a free loopback port, stopped after), and Redis down is said once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, write_jsonl

REDIS = "/usr/bin/redis-server"
KEY = "sk-test-NEVER-PRINT-ME-shared-0123"
PASSWORD = "hunter2-NEVER-PRINT-ME"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, with a password and no persistence."""
    if not os.path.exists(REDIS):
        pytest.skip(f"{REDIS} is not installed (.ci/run installs Debian's redis-server)")
    port = free_port()
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", PASSWORD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):  # until it accepts connections (bounded: 10 s)
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHRUN_", "OPENAI_"))}
    return {**e, "BATCHRUN_API_KEY": KEY, "BATCHRUN_RETRY_BASE": "0.01"}


def start(inp: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, "--model", "m",
            "--concurrency", "32", "--max-attempts", "3", "--quiet", *extra]
    return subprocess.Popen(args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def redis_dump(url: str) -> str:
    """Every key and value in the Redis, as text (to look for the API key)."""
    import redis

    r = redis.Redis.from_url(url)
    out = []
    for k in r.scan_iter():
        out.append(k.decode())
        kind = r.type(k).decode()
        out.append(repr(r.hgetall(k) if kind == "hash" else r.zrange(k, 0, -1)))
    r.close()
    return "\n".join(out)


def test_processes_on_one_key_share_its_limit(tmp_path: Path, sim_factory: Any, redis_url: str) -> None:
    # a 1-second bucket of 40 requests: four jobs that each learn it alone burst past it together
    sim = sim_factory(rpm=2400, latency_ms=30.0)
    inputs = [write_jsonl(tmp_path / f"in{j}.jsonl", plain_records(40, prefix=f"j{j}-")) for j in range(4)]
    procs = [start(p, sim.url, "--shared-limits", redis_url) for p in inputs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    seen = Counter(r["custom_id"] for p in inputs for r in read_results(p.with_suffix(".results.jsonl")))
    assert len(seen) == 160 and set(seen.values()) == {1}
    assert sim.stats.rate_limited <= 1, f"{sim.stats.rate_limited} 429s of {sim.stats.requests} requests"
    dump = redis_dump(redis_url)
    assert "batchrun:limit:" in dump and KEY not in dump  # the key is named by a hash only
    for out, err in outs:
        assert PASSWORD not in out + err and KEY not in out + err


def test_a_killed_process_holds_nothing_and_its_rerun_completes_once(
        tmp_path: Path, sim_factory: Any, redis_url: str) -> None:
    sim = sim_factory(rpm=2400, latency_ms=30.0)
    inputs = [write_jsonl(tmp_path / f"in{j}.jsonl", plain_records(40, prefix=f"k{j}-")) for j in range(3)]
    procs = [start(p, sim.url, "--shared-limits", redis_url) for p in inputs]
    victim = inputs[0].with_suffix(".results.jsonl")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (victim.exists() and victim.read_bytes().count(b"\n") >= 12):
        time.sleep(0.02)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].communicate(timeout=10)  # reaped, its pipes closed
    for p in procs[1:]:
        p.communicate(timeout=120)
        assert p.returncode == 0
    rerun = start(inputs[0], sim.url, "--shared-limits", redis_url)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    for p in inputs:
        keys = Counter(r["custom_id"] for r in read_results(p.with_suffix(".results.jsonl")))
        assert len(keys) == 40 and set(keys.values()) == {1}
    assert sim.stats.rate_limited <= 2


def _cli(args: list[str]) -> Any:
    """In-process (nothing here needs a process of its own), stderr kept apart."""
    env = {"BATCHRUN_API_KEY": KEY, "BATCHRUN_RETRY_BASE": "0.01", "BATCHRUN_BASE_URL": None,
           "OPENAI_BASE_URL": None, "OPENAI_API_KEY": None}
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)  # type: ignore[arg-type]


def test_redis_down_is_said_once_and_the_job_goes_on_alone(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(rpm=2400)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30))
    down = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens there
    res = _cli(["process", str(inp), "--base-url", sim.url, "--model", "m", "--shared-limits", down])
    assert res.exit_code == 0, res.output
    assert res.output.count("does not answer") == 1
    assert "Traceback" not in res.output and PASSWORD not in res.output
    assert all(r["error"] is None for r in read_results(tmp_path / "in.results.jsonl"))

    inp2 = write_jsonl(tmp_path / "in2.jsonl", plain_records(5))
    res = _cli(["process", str(inp2), "--base-url", sim.url, "--model", "m", "--shared-limits", down,
                "--shared-limits-required"])
    assert res.exit_code == 75, res.output
    assert "--shared-limits-required" in res.output and PASSWORD not in res.output
    assert sim.stats.requests == 30  # the required run sent nothing


def test_a_bad_shared_limits_url_is_one_sentence_without_its_password(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    res = _cli(["process", str(inp), "--simulate", "--shared-limits", f"http://:{PASSWORD}@127.0.0.1:1/0"])
    assert res.exit_code == 2
    assert "shared-limits" in res.output and PASSWORD not in res.output
