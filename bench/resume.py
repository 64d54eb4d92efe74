"""Fast resume: a 1,000,000-line job that is 99 % done starts sending its remaining records fast.

    python bench/resume.py [--lines 1000000]

The job state is built the way a run leaves it (output lines and a checkpoint, written with
batchrun's own functions) with the *last* 1 % of lines left to do, the worst case: the reader
must pass every done line before the first remaining one. Prints seconds from process start to
the first request at the server (the bar is 5 s), and the same for a fresh start, as a ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchrun.config import resolve  # noqa: E402
from batchrun.records import Result, Usage
from batchrun.store.identity import fingerprint  # noqa: E402
from batchrun.store.state import JobState, checkpoint_path, save_atomic
from batchrun.store.wire import result_line  # noqa: E402
from bench.common import fresh_dir, make_input, sim_reset, sim_stats, start_sim, stop  # noqa: E402

BODY = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "billing"}}],
        "usage": {"prompt_tokens": 23, "completion_tokens": 9}}


def first_request_after(args: list[str], url: str) -> tuple[float, float, int]:
    """Start batchrun; seconds until the server's first answer, total seconds, exit code."""
    sim_reset(url)
    env = {**os.environ, "BATCHRUN_API_KEY": "bench-key"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "batchrun", "process", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total = time.monotonic() - t0
    times = sim_stats(url)["ok_times"]
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
    return (times[0] - t0 if times else float("nan")), total, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    a = ap.parse_args()
    work = fresh_dir("resume")
    inp = make_input(work / "in.jsonl", a.lines)
    sim, url = start_sim()
    try:
        flags = {"input": inp, "base_url": url, "model": "gpt-4o-mini", "quiet": True, "concurrency": 50}
        args = [str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--quiet", "--concurrency", "50"]
        small = make_input(work / "fresh.jsonl", 10_000)
        fresh_first, _, _ = first_request_after([str(small), *args[1:]], url)

        cfg = resolve(flags, {"BATCHRUN_API_KEY": "bench-key"})
        fp, lines = fingerprint(inp)
        state = JobState(fp, cfg.identity(), total=lines, runs=1)
        done_upto = a.lines - a.lines // 100
        t = time.monotonic()
        with open(cfg.output, "wb") as f:
            for n in range(1, done_upto + 1):
                r = Result(key=f"r{n - 1}", line=n, model="gpt-4o-mini", status_code=200, body=BODY,
                           attempts=1, latency_ms=5.0, usage=Usage(23, 9), cost_usd=0.0000088)
                f.write(result_line(r))
                state.record(r)
        state.output_offset = cfg.output.stat().st_size
        state.last_run = {"status": "stopped: interrupted"}
        save_atomic(checkpoint_path(cfg.output), state.to_bytes())
        print(f"built a {a.lines}-line job, {done_upto} done, in {time.monotonic() - t:.1f}s")

        first, total, code = first_request_after(args, url)
        assert code == 0, code
        sent = sim_stats(url)["ok"]
        assert sent == a.lines - done_upto, sent
    finally:
        stop(sim)
    print(f"resume of a {a.lines}-line job 99% done: first request after {first:.2f}s "
          f"(bar 5 s), finished in {total:.1f}s, sent {sent}")
    print(f"fresh start of a small job: first request after {fresh_first:.2f}s")
    print(f"RATIO resume time-to-first-request / 5 s bar = {first / 5:.2f}  (must be < 1)")


if __name__ == "__main__":
    main()
