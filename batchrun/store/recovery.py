"""Bring the checkpoint up to what the output really holds after any interruption."""

from __future__ import annotations

import os
from pathlib import Path

from batchrun.account.stats import JobStats
from batchrun.errors import JobError
from batchrun.route.arms import Arms
from batchrun.store.state import Done, JobState, checkpoint_path, save_atomic
from batchrun.store.wire import read_result_lines


def recover_output(output: Path, state: JobState, repair: bool = True) -> int:
    """Count the lines written after the checkpoint and cut a torn last line. Returns lines read.

    With repair=False (for `status`) nothing on disk is changed.
    """
    try:
        size = output.stat().st_size
    except FileNotFoundError:
        size = 0
    if size < state.output_offset:
        raise JobError(
            f"output {output} is shorter than its checkpoint says; it was changed outside "
            "batchrun. Run with --fresh to start over (the old output is kept)"
        )
    if size == state.output_offset:
        return 0
    n = 0
    pos = state.output_offset
    with open(output, "r+b" if repair else "rb") as f:
        f.seek(pos)
        for line in read_result_lines(f):
            pos += len(line.raw)
            r = line.result  # a line not of ours is left alone and counts nothing
            if r is not None and r.line and r.line not in state.done:
                state.record(r)
                n += 1
        torn = pos < size
        if torn and repair:  # the record of a torn line was in flight: it is sent again
            f.truncate(pos)
            f.flush()
            os.fsync(f.fileno())
    state.output_offset = pos
    return n


def rebuild_from_output(output: Path, state: JobState, drop_failed: bool) -> int:
    """Recount the whole output; with drop_failed, rewrite it without request-failure lines.

    Crash-safe in two steps: first a checkpoint that claims nothing (valid for the old and new
    output alike), then the atomic swap of the output, then the recount.
    Returns how many lines were dropped.
    """
    state.output_offset = 0
    state.done = Done()
    gone = JobStats()  # the dropped lines: their requests were received all the same
    state.stats = JobStats(abandoned=state.stats.abandoned)
    state.arms = Arms()
    save_atomic(checkpoint_path(output), state.to_bytes())
    dropped = 0
    if drop_failed and output.exists():
        tmp = output.with_name(output.name + ".rewrite")
        with open(output, "rb") as src, open(tmp, "wb") as dst:
            for line in read_result_lines(src):
                r = line.result
                if r is None:
                    continue
                if not r.ok and not r.invalid:
                    dropped += 1
                    gone.add(r)
                    continue
                dst.write(line.raw)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, output)
    recover_output(output, state)
    state.stats.abandon({name: [m.attempts, m.rate_limited] for name, m in gone.models.items()})
    return dropped

