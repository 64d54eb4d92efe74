"""Many processes on one key, sharing its limit through Redis, counted at the server.

    python bench/shared_limits.py [--only shared8,kill8,two-local,parts4,cost]

Each scenario starts `batchrun mock-server` (2,400 RPM per-second bucket with headers, latency
50±20 ms) and, where it shares, `/usr/bin/redis-server` on a free loopback port; whole jobs run
as real subprocesses with `--concurrency 64 --max-attempts 3`. Utilization is computed as in
bench/ratelimit.py (ideal time at the bucket's rate ÷ first request → last admitted).

- shared8: 8 processes × 250 records with --shared-limits (floor 0.90, 429s ≤ 1 %).
- kill8: the same, one process killed with kill -9 a third of the way; utilization of the rest
  after the kill (floor 0.85); the killed one is run again and must complete its file once.
- two-local: 2 processes × 1,200 records, no Redis (floor 0.90, 429s ≤ 1 %).
- parts4: one 2,000-record file as 4 `--part K/4` processes sharing 3,000 RPM through Redis:
  parts disjoint and complete, each 15-35 %, 429s ≤ 1 %, one export in input order.
- cost: one process alone vs one process with --shared-limits at the same limit (throughput ratio,
  sharing may cost ≤ 5 %).
Every load is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, fresh_dir, make_input, sim_stats, start_sim, stop  # noqa: E402

SIM = ["--latency-ms", "50", "--jitter-ms", "20"]
RUN = ["--model", "m", "--quiet", "--concurrency", "64", "--max-attempts", "3"]
REDIS = "/usr/bin/redis-server"


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, no persistence; its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)  # type: ignore[arg-type]


def _env() -> dict[str, str]:
    return {**os.environ, "BATCHRUN_API_KEY": "bench-key"}


def job(inp: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, *RUN, *extra]
    return subprocess.Popen(args, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def util(admitted: list[Any], first: float, per_minute: float) -> float:
    """Ideal time at the bucket's rate ÷ actual time, from the server's admissions."""
    if len(admitted) < 2:
        return 0.0
    ideal = (len(admitted) - per_minute / 60.0) / (per_minute / 60.0)
    return ideal / (admitted[-1][0] - first)


def results(paths: list[Path], by_file: bool = False) -> Counter[str]:
    """How many times each record key (with by_file, each file's) appears with an answer."""
    seen: Counter[str] = Counter()
    for p in paths:
        for line in p.read_text().splitlines():
            row = json.loads(line)
            if row.get("error") is None:
                seen[f"{p.name}:{row['custom_id']}" if by_file else row["custom_id"]] += 1
    return seen


def shared8(kill: bool) -> str:
    work = fresh_dir("shared-kill8" if kill else "shared8")
    proc, url = start_sim(*SIM, "--rpm", "2400")
    try:
        with redis_server() as redis:
            inputs = [make_input(work / f"in{j}.jsonl", 250) for j in range(8)]
            procs = [job(p, url, "--shared-limits", redis) for p in inputs]
            killed_at = None
            if kill:
                deadline = time.monotonic() + 300
                out0 = work / "in0.results.jsonl"
                while time.monotonic() < deadline:
                    if out0.exists() and len(out0.read_bytes().splitlines()) >= 250 // 3:
                        break
                    time.sleep(0.05)
                procs[0].send_signal(signal.SIGKILL)
                killed_at = sim_stats(url)["admitted"][-1][0]
            codes = [p.wait(timeout=600) for p in procs]
            st = sim_stats(url)
            rerun = None
            if kill:
                rerun = job(inputs[0], url, "--shared-limits", redis).wait(timeout=600)
    finally:
        stop(proc)
    adm = st["admitted"]
    if killed_at is not None:
        after = [a for a in adm if a[0] >= killed_at]
        u = util(after, killed_at, 2400)
    else:
        u = util(adm, st["first_request_at"], 2400)
    share = st["rate_limited"] / st["requests"]
    seen = results(sorted(work.glob("*.results.jsonl")), by_file=True)
    once = sum(seen.values()) == 2000 and all(v == 1 for v in seen.values()) if not kill else None
    floor = 0.85 if kill else 0.90
    extra = ""
    if kill:
        killed = results([work / "in0.results.jsonl"])
        extra = f" killed rerun exit {rerun}: {len(killed)} records, twice {sum(v > 1 for v in killed.values())}"
    ok = u >= floor and share <= 0.01 and (once is None or once)
    return (f"{'kill8' if kill else 'shared8':10} utilization {u:.3f} (floor {floor}) 429 {share:.2%} "
            f"received {st['requests']} every record once {once} exit {codes}{extra} "
            f"{'ok' if ok else 'BELOW'}")


def two_local() -> str:
    work = fresh_dir("shared-two-local")
    proc, url = start_sim(*SIM, "--rpm", "2400")
    try:
        procs = [job(make_input(work / f"in{j}.jsonl", 1200), url) for j in range(2)]
        codes = [p.wait(timeout=600) for p in procs]
        st = sim_stats(url)
    finally:
        stop(proc)
    u = util(st["admitted"], st["first_request_at"], 2400)
    share = st["rate_limited"] / st["requests"]
    ok = u >= 0.9 and share <= 0.01
    return f"two-local  utilization {u:.3f} (floor 0.90) 429 {share:.2%} exit {codes} {'ok' if ok else 'BELOW'}"


def parts4() -> str:
    work = fresh_dir("shared-parts4")
    inp = make_input(work / "big.jsonl", 2000)
    proc, url = start_sim(*SIM, "--rpm", "3000")
    try:
        with redis_server() as redis:
            procs = [job(inp, url, "--shared-limits", redis, "--part", f"{k}/4") for k in range(1, 5)]
            codes = [p.wait(timeout=600) for p in procs]
        st = sim_stats(url)
    finally:
        stop(proc)
    outs = [work / f"big.part-{k}-of-4.results.jsonl" for k in range(1, 5)]
    per = [len(results([o])) for o in outs]
    seen = results(outs)
    share = st["rate_limited"] / st["requests"]
    csv_path = work / "all.csv"
    subprocess.run([sys.executable, "-m", "batchrun", "export", *map(str, outs), "--input", str(inp), "-o",
                    str(csv_path)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with csv_path.open(encoding="utf-8-sig") as f:
        keys = [row["key"] for row in csv.DictReader(f)]
    in_order = keys == [json.loads(x)["id"] for x in inp.read_text().splitlines()]
    shares = [n / 2000 for n in per]
    ok = (len(seen) == 2000 and all(v == 1 for v in seen.values()) and all(0.15 <= s <= 0.35 for s in shares)
          and share <= 0.01 and in_order)
    return (f"parts4     per part {per} disjoint+complete {len(seen) == 2000 and max(seen.values()) == 1} "
            f"429 {share:.2%} export in input order {in_order} exit {codes} {'ok' if ok else 'BELOW'}")


def cost() -> str:
    """Throughput of one process alone vs one process through Redis, at the same stated limit."""
    rates = []
    for shared in (False, True):
        work = fresh_dir(f"shared-cost-{shared}")
        proc, url = start_sim(*SIM, "--rpm", "2400")
        try:
            with redis_server() as redis:
                extra = ["--shared-limits", redis] if shared else []
                job(make_input(work / "in.jsonl", 1200), url, *extra).wait(timeout=600)
            st = sim_stats(url)
        finally:
            stop(proc)
        rates.append(util(st["admitted"], st["first_request_at"], 2400))
    return (f"cost       alone {rates[0]:.3f} shared {rates[1]:.3f} ratio {rates[1] / rates[0]:.3f} "
            f"(floor 0.95) {'ok' if rates[1] / rates[0] >= 0.95 else 'BELOW'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    names = [n for n in ap.parse_args().only.split(",") if n] or ["shared8", "kill8", "two-local", "parts4", "cost"]
    run = {"shared8": lambda: shared8(False), "kill8": lambda: shared8(True), "two-local": two_local,
           "parts4": parts4, "cost": cost}
    for name in names:
        print(run[name](), flush=True)


if __name__ == "__main__":
    main()
