"""Peak RSS of `batchrun process --batch-api` over 1,000,000 lines (the simulator in its own
process, answering batches as fast as it can).

    python bench/batch_memory.py [--records 1000000] [--batch-size 50000]

Prints the peak (ru_maxrss of the batchrun process alone), the wall time, and the ratio of the
peak to the issue's bar of 150 MB: shards go to and from disk, so memory must not follow the file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, batchrun, make_input, sim_stats, start_sim, stop  # noqa: E402

BAR_MB = 150


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=50_000)
    a = ap.parse_args()
    work = OUT / "batch_memory"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    inp = make_input(work / "in.jsonl", a.records)
    sim, url = start_sim("--batch-step-s", "0")
    try:
        code, wall, rss = batchrun([str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--quiet",
                                    "--batch-api", "--batch-size", str(a.batch_size)])
        stats = sim_stats(url)
    finally:
        stop(sim)
    assert code == 0, code
    lines = sum(1 for _ in open(work / "in.results.jsonl", "rb"))
    assert lines == a.records, lines
    assert stats["requests"] == 0 and stats["batch_billed"] == a.records, stats["batch_billed"]
    print(f"{a.records} records through --batch-api in {stats['batches_created']} batches: {lines} result "
          f"lines, 0 live requests, peak RSS {rss} MB, {wall:.1f}s")
    print(f"RATIO peak RSS / bar = {rss}/{BAR_MB} MB = {rss / BAR_MB:.2f}  (bar: <= 1.00)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
