"""Peak RSS of `batchrun export` joining 1,000,000 shuffled results to their input.

    python bench/export_memory.py [--records 1000000] [--small 100000]

Writes an input of plain records and a results file holding their results in a random order
(JSON answers, some failures and bad lines, written over about 3 hours), runs `batchrun export
--parse-json` to CSV in its own process at both sizes, and prints each peak (ru_maxrss of the
export process alone), the large one as a ratio of the 200 MB bar, and large ÷ small (flat
memory: near 1). Then `batchrun report --html` of both: the page's size, large ÷ small.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchrun.records import Result, Usage  # noqa: E402
from batchrun.store.wire import result_line  # noqa: E402
from bench.common import ROOT, fresh_dir  # noqa: E402

BAR_MB = 200
CATEGORIES = ("billing", "shipping", "technical", "account")


def make_files(work: Path, n: int) -> tuple[Path, Path]:
    """n input lines (every 1000th a bad line) and their results, shuffled."""
    inp, out = work / f"in{n}.jsonl", work / f"in{n}.results.jsonl"
    with open(inp, "wb") as f:
        for i in range(1, n + 1):
            if i % 1000 == 0:
                f.write(b"{not json\n")
            else:
                f.write(orjson.dumps({"id": f"r{i}", "text": f"ticket {i}: the parcel arrived late",
                                      "lang": "en", "priority": i % 3}) + b"\n")
    order = list(range(1, n + 1))
    random.Random(1).shuffle(order)
    with open(out, "wb") as f:
        for k, i in enumerate(order):
            f.write(result_line(_result(i), 1_790_000_000.0 + k * 10_000 / n))
    return inp, out


def _result(i: int) -> Result:
    if i % 1000 == 0:
        return Result(key=f"line-{i}", line=i, model=None, error_code="invalid_input",
                      error_message=f"line {i}: invalid JSON")
    if i % 97 == 0:
        return Result(key=f"r{i}", line=i, model="gpt-4o-mini", status_code=500, error_code="server_error",
                      error_message="boom", attempts=6)
    answer = orjson.dumps({"category": CATEGORIES[i % 4], "urgency": "low"}).decode()
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 12}}
    return Result(key=f"r{i}", line=i, model="gpt-4o-mini", status_code=200, body=body, attempts=1,
                  latency_ms=200.0, usage=Usage(30, 12), cost_usd=0.0000117, started_at=1_790_000_000.0)


def export(inp: Path, out: Path, csv: Path) -> tuple[int, float, int]:
    """Exit code, wall seconds, peak RSS in MB of one export process."""
    return measure(["export", str(out), "--input", str(inp), "--parse-json", "-o", str(csv)])


def measure(args: list[str]) -> tuple[int, float, int]:
    """Exit code, wall seconds, peak RSS in MB of one batchrun process."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "batchrun", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    print("  " + err.strip().replace("\n", "\n  "))
    return code, time.monotonic() - start, usage.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    a = ap.parse_args()
    work = fresh_dir("export_memory")
    peaks = {}
    for n in (a.small, a.records):
        inp, out = make_files(work, n)
        csv = work / f"out{n}.csv"
        code, wall, rss = export(inp, out, csv)
        assert code == 0, code
        with open(csv, "rb") as f:
            rows = sum(1 for _ in f) - 1
        assert rows == n, rows
        peaks[n] = rss
        print(f"{n} records: peak RSS {rss} MB, {wall:.1f}s, {rows} rows, CSV {csv.stat().st_size >> 20} MB")
    big = peaks[a.records]
    print(f"RATIO peak RSS at {a.records} / bar {BAR_MB} MB = {big / BAR_MB:.2f} ({big} MB; bar: <= 1.0); "
          f"{a.records}/{a.small} = {big / peaks[a.small]:.2f}")
    sizes = {}
    for n in (a.small, a.records):
        page = work / f"report{n}.html"
        code, wall, rss = measure(["report", str(work / f"in{n}.results.jsonl"), "--html", str(page)])
        assert code == 0, code
        sizes[n] = page.stat().st_size
        print(f"report --html of {n} lines: {sizes[n] / 1024:.0f} kB page, peak RSS {rss} MB, {wall:.1f}s")
    print(f"RATIO HTML report size {a.records}/{a.small} lines = {sizes[a.records] / sizes[a.small]:.2f}")


if __name__ == "__main__":
    main()
