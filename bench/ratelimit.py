"""How batchrun finds a rate limit, against every shape providers enforce, counted at the server.

    python bench/ratelimit.py [--only bucket-headers,two-jobs,...] [--quick]

Each scenario starts `batchrun mock-server` in its own process (latency 50±20 ms), runs whole
jobs with `--concurrency 64 --max-attempts 3` and no --rpm/--tpm, and reads the server's own
counts. Start-up is included: the clock runs from the first request the server received.

- utilization, buckets: ideal time ÷ actual time; ideal = (charge admitted − one bucket) ÷
  refill rate, actual = first request received → last request admitted.
- utilization, windows: admitted per full window ÷ the window's quota.
- 429 share = 429s ÷ requests received. failed = records whose line is an error.
Every load is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, fresh_dir, make_input, sim_stats, start_sim, stop  # noqa: E402

SIM = ["--latency-ms", "50", "--jitter-ms", "20"]
RUN = ["--model", "m", "--quiet", "--concurrency", "64", "--max-attempts", "3"]


@dataclass(frozen=True)
class Scenario:
    """One way of enforcing a limit, and the issue's floor for it."""

    sim: list[str]
    records: int
    kind: str  # bucket or window
    per_minute: float  # the limit, requests (or tokens with tokens=True)
    floor: float
    cap_429: float
    tokens: bool = False
    jobs: int = 1
    window_s: float = 0.0
    run: list[str] = field(default_factory=list)


SCENARIOS = {
    "bucket-headers": Scenario(["--rpm", "2400"], 1200, "bucket", 2400, 0.95, 0.005),
    "bucket-retry-after": Scenario(["--rpm", "2400", "--no-headers"], 1200, "bucket", 2400, 0.90, 0.02),
    "bucket-bare": Scenario(["--rpm", "2400", "--no-headers", "--retry-after", "none"], 1200, "bucket",
                            2400, 0.85, 0.03),
    "tpm-bucket-headers": Scenario(["--tpm", "240000"], 1200, "bucket", 240_000, 0.95, 0.005, tokens=True,
                                   run=["--max-tokens", "100"]),
    "two-jobs": Scenario(["--rpm", "2400"], 1200, "bucket", 2400, 0.90, 0.01, jobs=2),
    "fixed-10s-headers": Scenario(["--rpm", "2400", "--window", "fixed", "--window-s", "10"], 1600, "window",
                                  2400, 0.95, 0.005, window_s=10.0),
    "minute-retry-after": Scenario(["--rpm", "1200", "--window", "minute", "--no-headers"], 1500, "window",
                                   1200, 0.95, 0.02, window_s=60.0),
}


def run_jobs(url: str, sc: Scenario, work: Path) -> list[int]:
    """Start the scenario's jobs at once; wait for all; return their exit codes."""
    procs = []
    for j in range(sc.jobs):
        inp = make_input(work / f"in{j}.jsonl", sc.records, text_words=20 if sc.tokens else 12)
        args = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, *RUN, *sc.run]
        procs.append(subprocess.Popen(args, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    return [p.wait(timeout=600) for p in procs]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "BATCHRUN_API_KEY": "bench-key"}


def failed_records(work: Path) -> int:
    n = 0
    for out in work.glob("*.results.jsonl"):
        n += sum(1 for line in out.read_text().splitlines() if json.loads(line)["error"] is not None)
    return n


def utilization(st: dict[str, Any], sc: Scenario) -> float:
    admitted = st["admitted"]
    charges = [(t, tok if sc.tokens else req) for t, req, tok in admitted]
    if sc.kind == "bucket":
        bucket = sc.per_minute / 60.0  # one second of the limit
        ideal = (sum(c for _, c in charges) - bucket) / (sc.per_minute / 60.0)
        return ideal / (charges[-1][0] - st["first_request_at"])
    # windows: the server counts them from its start (fixed) or from the wall clock (minute)
    per: dict[int, float] = {}
    origin = 0.0 if sc.window_s == 60.0 else st["origin"]
    for t, c in charges:
        w = int((t + st["wall_offset"] - origin) // sc.window_s)
        per[w] = per.get(w, 0.0) + c
    full = sorted(per)[:-1] or sorted(per)  # the last window is a partial one: the job ended
    quota = sc.per_minute * sc.window_s / 60.0
    return sum(per[w] for w in full) / (len(full) * quota)


def keepalive_queue(work: Path) -> str:
    """DeepSeek under load: 16 answered at once, the rest held with empty lines (~3 s)."""
    proc, url = start_sim("--latency-ms", "1000", "--queue-over", "16", "--keepalive-s", "0.5")
    try:
        inp = make_input(work / "in.jsonl", 200)
        args = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, *RUN, "--timeout", "2"]
        code = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, timeout=600).returncode
        st = sim_stats(url)
    finally:
        stop(proc)
    resent = st["requests"] - 200
    twice = sum(1 for n in st["billed_by_prompt"].values() if n > 1)
    attempts = {json.loads(x)["batchrun"]["attempts"] for x in (work / "in.results.jsonl").read_text().splitlines()}
    return (f"keep-alive queue (--timeout 2)  exit {code}: {resent} resent, {twice} billed twice, "
            f"attempts {sorted(attempts)}, failed {failed_records(work)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or [*SCENARIOS, "keepalive"]
    print(f"{'scenario':22} {'utilization':>11} {'floor':>6} {'429 share':>9} {'cap':>6} "
          f"{'received':>8} {'failed':>6} {'seconds':>7}")
    for name in names:
        work = fresh_dir(f"ratelimit-{name}")
        if name == "keepalive":
            print(keepalive_queue(work))
            continue
        sc = SCENARIOS[name]
        proc, url = start_sim(*SIM, *sc.sim)
        t0 = time.monotonic()
        try:
            codes = run_jobs(url, sc, work)
            st = sim_stats(url)
        finally:
            stop(proc)
        util = utilization(st, sc)
        share = st["rate_limited"] / st["requests"]
        ok = util >= sc.floor and share <= sc.cap_429 and failed_records(work) == 0
        print(f"{name:22} {util:11.3f} {sc.floor:6.2f} {share:9.2%} {sc.cap_429:6.1%} {st['requests']:8d} "
              f"{failed_records(work):6d} {time.monotonic() - t0:7.1f}  {'ok' if ok else 'BELOW'} exit {codes}")


if __name__ == "__main__":
    main()
