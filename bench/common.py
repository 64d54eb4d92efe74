"""Helpers shared by the benchmarks: a simulator in its own process, inputs, counters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

# An installed batchrun runs from compiled bytecode; a shell with PYTHONDONTWRITEBYTECODE set
# would make every child compile ~120 modules again (0.12 s of each start-up) and time that.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def start_sim(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `batchrun mock-server` on a free loopback port; return it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchrun", "mock-server", "--port", "0", *args],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    url = line.split("serving ", 1)[1].split(" ", 1)[0]
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process and reap it."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def sim_stats(url: str) -> dict[str, Any]:
    """The simulator's counters."""
    root = url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(root + "/_sim/stats", timeout=30) as r:  # loopback only
        return json.loads(r.read())


def sim_reset(url: str) -> None:
    """Zero the simulator's counters."""
    root = url.rsplit("/v1", 1)[0]
    req = urllib.request.Request(root + "/_sim/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=30).read()


def rate_at_server(url: str, skip: float = 0.0) -> tuple[float, int]:
    """Successful answers per second at the server, from its own timestamps.

    `skip` drops that share of the run at each end (ramp-up and tail).
    """
    times = sim_stats(url)["ok_times"]
    n = len(times)
    if n < 2:
        return 0.0, n
    lo, hi = int(n * skip), n - 1 - int(n * skip)
    return (hi - lo) / (times[hi] - times[lo]), n


def make_input(path: Path, n: int, text_words: int = 12) -> Path:
    """n plain records with distinct texts."""
    words = "the parcel arrived late and the box was damaged so I want a refund please".split()
    with open(path, "w") as f:
        for i in range(n):
            text = " ".join(words[(i + k) % len(words)] for k in range(text_words))
            f.write(json.dumps({"id": f"r{i}", "text": f"#{i} {text}"}) + "\n")
    return path


def batchrun(args: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Run `batchrun process ...`; return exit code, wall seconds and peak RSS in MB."""
    e = {**os.environ, "BATCHRUN_API_KEY": "bench-key", **(env or {})}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "batchrun", "process", *args], env=e,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        print(err, file=sys.stderr)
    return proc.returncode, wall, round(usage.ru_maxrss / 1024, 1)  # MB to 0.1: a ratio of peaks needs it


def fresh_dir(name: str) -> Path:
    """An empty folder under bench/out."""
    d = OUT / name
    if d.exists():
        for p in d.iterdir():
            p.unlink()
    d.mkdir(parents=True, exist_ok=True)
    return d
