"""`process --batch-api` against an enqueued-token limit: how close to the queue's own bound.

    python bench/batch_queue.py [--records 6000] [--batch-size 500] [--queue-shards 2.5] [--step 0.2]

Jobs against one simulator process each (`--batch-step-s STEP`: a batch spends STEP validating,
STEP in progress and STEP finalizing, so B = 3 x STEP): one shard alone (T1, the process's start
and end included), all the shards with no queue limit (W_free), and all the shards against a
queue of QUEUE_SHARDS shards' tokens, the limit not stated (W_queue: batchrun learns it). The
queue lets floor(QUEUE_SHARDS) batches run at once, so at best W_queue = T1 + (rounds - 1) x B,
rounds = ceil(shards / floor(QUEUE_SHARDS)). Prints W_queue / W_free, the ideal ratio the queue
sets (that best W_queue / W_free), and W_queue over its best.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchrun.sim.answers import read_ask  # noqa: E402
from bench.common import batchrun, fresh_dir, make_input, sim_stats, start_sim, stop  # noqa: E402


def sim_tokens(path: Path) -> int:
    """The prompt tokens the simulator counts for the plain records of `path`."""
    with open(path) as f:
        return sum(read_ask({"messages": [{"role": "user", "content": json.loads(line)["text"]}]}).prompt_tokens
                   for line in f)


def job(work: Path, name: str, records: int, batch_size: int, step: float, *sim_args: str) -> tuple[float, dict]:
    inp = make_input(work / f"{name}.jsonl", records)
    sim, url = start_sim("--batch-step-s", str(step), *sim_args)
    try:
        code, wall, _ = batchrun([str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--batch-api",
                                  "--batch-size", str(batch_size), "-q"])
        stats = sim_stats(url)
    finally:
        stop(sim)
    assert code == 0, f"{name}: exit {code}"
    return wall, stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=6000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--queue-shards", type=float, default=2.5)
    ap.add_argument("--step", type=float, default=1.0)
    a = ap.parse_args()
    work = fresh_dir("batch_queue")
    shards = math.ceil(a.records / a.batch_size)
    limit = int(sim_tokens(make_input(work / "all.jsonl", a.records)) / shards * a.queue_shards)
    t1, _ = job(work, "one", a.batch_size, a.batch_size, a.step)
    w_free, _ = job(work, "free", a.records, a.batch_size, a.step)
    w_queue, st = job(work, "queue", a.records, a.batch_size, a.step, "--batch-queue-tokens", str(limit))
    at_once = max(1, math.floor(a.queue_shards))
    rounds = math.ceil(shards / at_once)
    ideal = t1 + (rounds - 1) * 3 * a.step
    print(f"{a.records} records in {shards} shards; queue {limit:,} tokens = {a.queue_shards} shards; batch step "
          f"{a.step}s; one batch alone {t1:.2f}s, no limit {w_free:.2f}s, queue-bound {w_queue:.2f}s")
    print(f"queue-bound job: {st['batches_created']} batches created, {st['batches_refused_queue']} refused for the "
          f"queue, {st['batch_billed']} lines billed, {st['requests']} live requests")
    print(f"RATIO wall / wall with no queue limit = {w_queue / w_free:.2f} (ideal set by the queue: "
          f"{ideal / w_free:.2f})")
    print(f"RATIO wall / the queue's best ({rounds} rounds of one batch: {ideal:.2f}s) = {w_queue / ideal:.2f}")


if __name__ == "__main__":
    main()
