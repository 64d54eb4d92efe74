"""`process --deadline` against a provider whose batches are capacity-bound: the issue's tight floor.

    python bench/deadline.py [--records 3000] [--deadline 75s] [--rpm-flag]

The simulator (its own process) limits live requests to 3,000 a minute with rate-limit headers
and answers 20 batch lines a second across all batches. Prints the wall time from the start of
the run to its exit, live requests against the ideal (records less what batches can answer in
the time, about 1,600 here), lines answered in batches, and whether each record has exactly one
line. `--rpm-flag` passes `--rpm 3000`; without it the live rate is learned from the run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, batchrun, make_input, sim_stats, start_sim, stop  # noqa: E402

IDEAL_LIVE = 1600  # 3,000 records less 20 lines/s x ~70 s of batches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--deadline", default="75s")
    ap.add_argument("--rpm-flag", action="store_true")
    a = ap.parse_args()
    work = OUT / "deadline"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    inp = make_input(work / "in.jsonl", a.records)
    sim, url = start_sim("--rpm", "3000", "--batch-lines-per-s", "20")
    try:
        args = [str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--deadline", a.deadline, "-q",
                "--summary-json", str(work / "s.json"), *(["--rpm", "3000"] if a.rpm_flag else [])]
        started = time.monotonic()
        code, _wall, _rss = batchrun(args)
        wall = time.monotonic() - started
        st = sim_stats(url)
    finally:
        stop(sim)
    lines = Counter(json.loads(x)["custom_id"] for x in open(work / "in.results.jsonl", "rb"))
    once = len(lines) == a.records and set(lines.values()) == {1}
    live, batch = st["billed"], st["batch_billed"]
    print(f"exit {code}; wall {wall:.1f} s (floor: within 80 s); every record once: {once}; "
          f"answered {live + batch} of {a.records}")
    print(f"live requests {st['requests']} ({live} answered), {st['requests'] / IDEAL_LIVE:.2f}x the ideal "
          f"{IDEAL_LIVE} (floor: at most 1.30x); answered in batches {batch} (floor: at least 900)")
    print("summary:", json.loads((work / "s.json").read_text()).get("deadline"))


if __name__ == "__main__":
    main()
