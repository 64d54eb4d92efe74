"""Peak RSS of `batchrun process` at 20,000 and 200,000 records (zero-latency simulator).

    python bench/memory.py [--small 20000] [--large 200000]

Prints both peaks (ru_maxrss of the batchrun process alone) and their ratio; the issue's bar is
<= 70 MB at 200,000 and <= 1.1x the peak at 20,000 (issue 21; 150 MB and 1.3x before).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import batchrun, fresh_dir, make_input, start_sim, stop  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=200_000)
    a = ap.parse_args()
    work = fresh_dir("memory")
    sim, url = start_sim()
    peaks = {}
    try:
        for n in (a.small, a.large):
            inp = make_input(work / f"in{n}.jsonl", n)
            code, wall, rss = batchrun([str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--quiet",
                                        "--concurrency", "50"])
            assert code == 0, code
            peaks[n] = rss
            print(f"{n} records: peak RSS {rss} MB, {wall:.1f}s")
    finally:
        stop(sim)
    print(f"RATIO peak RSS {a.large}/{a.small} = {peaks[a.large] / peaks[a.small]:.2f}  (floor: <= 1.1, "
          f"and {peaks[a.large]} MB <= 70 MB)")


if __name__ == "__main__":
    main()
