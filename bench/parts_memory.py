"""A large input split in 8 parts: what each part reads, how soon it sends, how much memory.

    python bench/parts_memory.py [--mb 400]

Generates a JSONL file of about --mb MB under bench/out (plain records), then:
- a full parse: every line through line_batches and orjson.loads, timed;
- for each part K/8, the lines its range yields to the parser (the only lines it JSON-decodes)
  against total/8 + 1;
- part 8/8 (the one that counts the most newlines before its range) as a real process against
  the simulator: wall time from its start to the first request the server received, against
  1/4 of the full parse; stopped with SIGTERM after that, its peak RSS (≤ 70 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchrun.config import RunConfig  # noqa: E402
from batchrun.input.lines import line_batches  # noqa: E402
from batchrun.input.parts import Part, span  # noqa: E402
from bench.common import OUT, ROOT, sim_stats, start_sim, stop  # noqa: E402


def generate(path: Path, mb: int) -> int:
    """About `mb` MB of plain records (kept between runs when already of that size)."""
    if path.exists() and path.stat().st_size >= mb << 20:
        return sum(1 for _ in open(path, "rb"))
    text = "the parcel arrived late and the box was damaged so I want a refund please " * 3
    n = 0
    with open(path, "w") as f:
        while f.tell() < mb << 20:
            f.write("".join(json.dumps({"id": f"r{n + i}", "text": f"#{n + i} {text}"}) + "\n" for i in range(10000)))
            n += 10000
    return n


async def decoded(path: Path, part: Part | None, shape: bool = False) -> int:
    """Lines a part's range yields (each JSON-decoded); with shape, through batchrun's own parser
    (decoded and shaped into requests: what a whole-file job does with every line)."""
    n = 0
    bounds = span(path, part).bounds() if part else None
    parser = RunConfig(input=path, output=path, model="m").parser()
    async for batch in line_batches(path, span=bounds):
        for number, data in batch:
            if shape:
                parser.parse_line(number, data)
            else:
                orjson.loads(data or b"null")
            n += 1
    return n


def first_request(path: Path) -> tuple[float, float]:
    """Part 8/8 as a process: seconds from its start to the server's first request; peak RSS MB."""
    proc_sim, url = start_sim("--latency-ms", "50")
    try:
        out = OUT / "parts-memory" / "part8.results.jsonl"
        for p in out.parent.glob("part8.results.jsonl*"):
            p.unlink()
        env = {**os.environ, "BATCHRUN_API_KEY": "bench-key"}
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "batchrun", "process", str(path), "--base-url", url,
                                 "--model", "m", "--quiet", "--part", "8/8", "-o", str(out)],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            first = sim_stats(url).get("first_request_at")
            if first is not None:
                break
            time.sleep(0.05)
        peak = hwm(proc.pid)
        proc.send_signal(signal.SIGTERM)
        while proc.poll() is None:  # the drain after SIGTERM counts too
            peak = max(peak, hwm(proc.pid))
            time.sleep(0.01)
    finally:
        stop(proc_sim)
    return (first - t0 if first is not None else float("inf")), peak / 1024


def hwm(pid: int) -> int:
    """The process's peak RSS in KiB (VmHWM: its own, not the forking parent's as ru_maxrss
    would count after a fork from this large benchmark process)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=400)
    mb = ap.parse_args().mb
    (OUT / "parts-memory").mkdir(parents=True, exist_ok=True)
    path = OUT / "parts-memory" / "big.jsonl"
    total = generate(path, mb)
    t0 = time.monotonic()
    asyncio.run(decoded(path, None))
    decode_only = time.monotonic() - t0
    t0 = time.monotonic()
    asyncio.run(decoded(path, None, shape=True))
    full = time.monotonic() - t0
    per = [asyncio.run(decoded(path, Part(k, 8))) for k in range(1, 9)]
    ok_lines = sum(per) == total and all(n <= total / 8 * 1.05 + 1 for n in per)
    tfr, rss = first_request(path)
    print(f"input {path.stat().st_size / 1e6:.0f} MB, {total} lines; full parse {full:.2f}s "
          f"(batchrun's parser; JSON decoding alone {decode_only:.2f}s)")
    print(f"lines decoded per part {per} (total/8 = {total / 8:.0f}) {'ok' if ok_lines else 'BELOW'}")
    print(f"part 8/8 first request after {tfr:.2f}s = {tfr / full:.2f} of a full parse (floor 0.25) "
          f"{'ok' if tfr <= full / 4 else 'BELOW'}; peak RSS {rss:.0f} MB (floor 70) {'ok' if rss <= 70 else 'BELOW'}")


if __name__ == "__main__":
    main()
