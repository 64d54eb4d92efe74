"""`process --batch-api` against an enqueued-token limit, killed (-9) at random moments, then one
run to the end.

    python bench/batch_queue_kill.py [--records 6000] [--batch-size 250] [--queue-shards 2.5] [--kills 30]

The simulator (its own process) holds 2.5 shards' tokens per model and learns nothing from us: the
limit is learned from its refusals, the plan (with what was learned) survives each kill in the
checkpoint. Each run is killed somewhere in its first 0.3-1.5 s. Then, from the provider's own
list of batches (GET /batches, metadata batchrun_shard): every record once, every shard's batch
made once apart from the batches refused for the queue, batches created / shards <= 1 + refusals.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.batch_queue import sim_tokens  # noqa: E402
from bench.common import ROOT, fresh_dir, make_input, sim_stats, start_sim, stop  # noqa: E402


def provider_batches(url: str) -> list[dict[str, Any]]:
    """Every batch the simulator holds (loopback only)."""
    out: list[dict[str, Any]] = []
    after = ""
    for _ in range(100):
        req = urllib.request.Request(f"{url}/batches?limit=100{after}", headers={"Authorization": "Bearer k"})
        with urllib.request.urlopen(req, timeout=30) as r:
            page = json.loads(r.read())
        out += page["data"]
        if not page["has_more"]:
            return out
        after = f"&after={page['last_id']}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=6000)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--queue-shards", type=float, default=2.5)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    work = fresh_dir("batch_queue_kill")
    inp = make_input(work / "in.jsonl", a.records)
    limit = int(sim_tokens(inp) / math.ceil(a.records / a.batch_size) * a.queue_shards)
    sim, url = start_sim("--batch-step-s", "0.3", "--batch-queue-tokens", str(limit))
    env = {**os.environ, "BATCHRUN_API_KEY": "k"}
    cmd = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, "--model", "gpt-4o-mini",
           "--batch-api", "--batch-size", str(a.batch_size), "--summary-json", str(work / "s.json"), "-q"]
    rng = random.Random(a.seed)
    kills = 0
    try:
        while kills < a.kills:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            try:
                proc.wait(rng.uniform(0.3, 1.5))
                break  # finished before its kill: the job is done
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        code = subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT, timeout=900).returncode
        stats, batches = sim_stats(url), provider_batches(url)
    finally:
        stop(sim)
    assert code == 0, code
    lines = Counter(json.loads(line)["custom_id"] for line in open(work / "in.results.jsonl", "rb"))
    plan = [b for b in json.loads((work / "s.json").read_text())["batches"] if b["phase"] != "split"]
    refused = [b for b in batches if "token_limit_exceeded" in json.dumps(b.get("errors"))]
    ran = Counter(b["metadata"]["batchrun_shard"] for b in batches if b not in refused)
    print(f"{a.records} records, --batch-size {a.batch_size}, queue {a.queue_shards} shards: {kills} run(s) killed "
          f"with -9, then one to the end; {len(plan)} shards, {len(refused)} batches refused for the queue")
    print(f"RATIO result lines / records = {sum(lines.values())}/{a.records} = {sum(lines.values()) / a.records:.2f}"
          f" (each record once: {max(lines.values()) == 1})")
    print(f"shards whose batch was made more than once (refusals apart): {sum(1 for n in ran.values() if n > 1)}")
    print(f"RATIO batches created / shards = {stats['batches_created']}/{len(plan)} = "
          f"{stats['batches_created'] / len(plan):.2f} (bound: 1 + refusals / shards = "
          f"{1 + len(refused) / len(plan):.2f})")
    print(f"RATIO lines billed / records = {stats['batch_billed']}/{a.records} = "
          f"{stats['batch_billed'] / a.records:.2f}; live requests: {stats['requests']}")


if __name__ == "__main__":
    main()
