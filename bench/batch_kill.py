"""`process --batch-api` killed (-9) at random moments, run after run, until it finishes.

    python bench/batch_kill.py [--records 3000] [--batch-size 300] [--runs 40] [--seed 1]

The simulator (its own process) expires a tenth of each batch's lines the first time, so
collection also makes new shards. Prints the runs it took, then the ratios that must be 1.00:
result lines / records, batches created / shards in the plan, lines billed / records.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, ROOT, make_input, sim_stats, start_sim, stop  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    work = OUT / "batch_kill"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    inp = make_input(work / "in.jsonl", a.records)
    sim, url = start_sim("--batch-step-s", "0.3", "--batch-expire-share", "0.1")
    env = {**os.environ, "BATCHRUN_API_KEY": "bench-key"}
    cmd = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, "--model", "gpt-4o-mini",
           "--batch-api", "--batch-size", str(a.batch_size), "--summary-json", str(work / "s.json"), "-q"]
    rng = random.Random(a.seed)
    kills = 0
    try:
        for _ in range(a.runs):  # killed somewhere in its first 0.05-0.8 s, each time
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            try:
                code = proc.wait(rng.uniform(0.05, 0.8))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                continue
            break
        code = subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT, timeout=600).returncode
        stats = sim_stats(url)
    finally:
        stop(sim)
    assert code == 0, code
    lines = Counter(json.loads(line)["custom_id"] for line in open(work / "in.results.jsonl", "rb"))
    shards = len(json.loads((work / "s.json").read_text())["batches"])
    print(f"{a.records} records, --batch-size {a.batch_size}: {kills} run(s) killed with -9, then one to the end; "
          f"{shards} shards (first batches and the expired lines' new ones)")
    print(f"RATIO result lines / records = {sum(lines.values())}/{a.records} = {sum(lines.values()) / a.records:.2f}"
          f" (each record once: {max(lines.values()) == 1})")
    print(f"RATIO batches created / shards = {stats['batches_created']}/{shards} = "
          f"{stats['batches_created'] / shards:.2f}")
    print(f"RATIO lines billed / records = {stats['batch_billed']}/{a.records} = "
          f"{stats['batch_billed'] / a.records:.2f}; live requests: {stats['requests']}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
