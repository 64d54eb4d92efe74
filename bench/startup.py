"""Start-up: a one-record job's CPU time ÷ importing the libraries batchrun is built on.

    python bench/startup.py [--runs 7]

A cron run of a small file pays the start-up every time. Both commands run in turn, `--runs`
times each, against a simulator already serving on loopback; each figure is the child's own
user + system seconds (less noisy than the wall clock on a shared machine), and the ratio is
of the medians. The yardstick is `import aiohttp, rich, typer, orjson`. batchrun pins typer
below 0.29 (0.28 here): typer 0.29 imports pydantic and builds an adapter per option at each
start. Under typer 0.29 the second line adds `typer._adapters` (pydantic) to the yardstick;
under 0.28 it has no such module and the second line is left out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, fresh_dir, make_input, start_sim, stop  # noqa: E402

IMPORTS = "import aiohttp, rich, typer, orjson"
# typer 0.29's pydantic adapters (absent from the pinned typer 0.28)
HAS_ADAPTERS = importlib.util.find_spec("typer._adapters") is not None


def cpu_of(cmd: list[str], env: dict[str, str]) -> float:
    """The child's user + system seconds."""
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    work = fresh_dir("startup")
    inp = make_input(work / "one.jsonl", 1)
    env = {**os.environ, "BATCHRUN_API_KEY": "bench-key", "BATCHRUN_CACHE_DIR": str(work.parent / "startup-cache")}
    sim, url = start_sim()
    job = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, "--model", "gpt-4o-mini",
           "--quiet", "--fresh"]
    times: dict[str, list[float]] = {"job": [], "imports": [], **({"imports+adapters": []} if HAS_ADAPTERS else {})}
    try:
        cpu_of(job, env)  # the first run fills the price cache, as a cron job's first run does
        for _ in range(a.runs):  # in turn: a drift of the machine's speed touches all three alike
            times["job"].append(cpu_of(job, env))
            times["imports"].append(cpu_of([sys.executable, "-c", IMPORTS], env))
            if HAS_ADAPTERS:
                times["imports+adapters"].append(cpu_of([sys.executable, "-c", IMPORTS + ", typer._adapters"], env))
    finally:
        stop(sim)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:18} cpu s: min {min(v):.3f}  median {med[k]:.3f}  max {max(v):.3f}")
    print(f"RATIO one-record job / imports = {med['job'] / med['imports']:.2f}  (floor 1.4)")
    import typer

    print(f"typer {typer.__version__}")
    if HAS_ADAPTERS:
        print(f"RATIO one-record job / imports with typer's pydantic adapters = "
              f"{med['job'] / med['imports+adapters']:.2f}")


if __name__ == "__main__":
    main()
