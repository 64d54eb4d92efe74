"""Open a job's files in one call: the lock, the input's fingerprint, the checkpoint, its
identity check and the output's recovery. What is opened is a JobState ready to run on."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchrun.clock import now_iso
from batchrun.errors import InputError, JobError, reading
from batchrun.store.identity import fingerprint
from batchrun.store.lock import JobLock, lock_path
from batchrun.store.recovery import rebuild_from_output, recover_output
from batchrun.store.state import JobState, checkpoint_path, load_state, save_atomic


@dataclass(frozen=True, slots=True)
class JobFiles:
    """Where a job lives and what makes it the same job."""

    input: Path
    output: Path
    identity: dict[str, Any]  # the request-shaping options
    span: tuple[int, int] | None = None  # --part K/N: the part's bytes, all it reads and fingerprints

    @property
    def checkpoint(self) -> Path:
        """The checkpoint beside the output."""
        return checkpoint_path(self.output)


@contextmanager
def open_job(
    files: JobFiles, *, fresh: bool, retry_failed: bool, notice: Callable[[str], None]
) -> Iterator[JobState]:
    """Hold the job's lock while the caller runs it; yield its state, loaded and recovered or new."""
    lock = JobLock(lock_path(files.output))
    lock.acquire()
    try:
        if lock.stale_pid is not None:
            notice(f"took over a stale lock left by PID {lock.stale_pid}, which is not running")
        yield _load(files, fresh, retry_failed, notice)
    finally:
        lock.release()


def _load(files: JobFiles, fresh: bool, retry_failed: bool, notice: Callable[[str], None]) -> JobState:
    if not files.input.is_file():
        raise InputError(f"input file {files.input} does not exist or is not a file")
    with reading("input file", files.input):
        fp, lines = fingerprint(files.input, files.span)
    if fresh:
        _move_aside(files, notice)
    state = None if fresh else load_state(files.checkpoint)
    # a rerun of a complete job sends nothing: not a run (`runs` counts runs that did work)
    noop = state is not None and not retry_failed and state.last_run.get("status") == "complete"
    if state is None:
        state = _new_state(files, fp)
    else:
        _check_same_job(files, state, fp)
        _recover(files, state, retry_failed, notice)
    state.total = lines
    state.runs += 0 if noop else 1
    state.last_run = {"status": "running", "started": now_iso(), "pid": os.getpid()}
    try:
        files.output.parent.mkdir(parents=True, exist_ok=True)
        files.output.touch()
        save_atomic(files.checkpoint, state.to_bytes())
    except OSError as e:
        raise JobError(f"cannot write the output {files.output} or its checkpoint: {e.strerror or e}") from None
    return state


def _move_aside(files: JobFiles, notice: Callable[[str], None]) -> None:
    out = files.output
    if out.exists() and out.stat().st_size > 0:  # results are never deleted silently
        aside = out.with_name(f"{out.name}.{time.strftime('%Y%m%dT%H%M%S')}.old")
        os.replace(out, aside)
        notice(f"--fresh: moved the old output {out} aside to {aside}")
    files.checkpoint.unlink(missing_ok=True)  # only an index into that output


def _new_state(files: JobFiles, fp: dict[str, Any]) -> JobState:
    if files.output.exists() and files.output.stat().st_size > 0:
        raise JobError(
            f"output {files.output} already exists but has no batchrun checkpoint; "
            "pass --fresh to move it aside and start over, or -o to write elsewhere"
        )
    return JobState(input_fingerprint=fp, identity=files.identity)


def _check_same_job(files: JobFiles, state: JobState, fp: dict[str, Any]) -> None:
    if state.input_fingerprint != fp:
        raise JobError(
            f"input {files.input} changed since this job started; to resume, restore it, "
            "or pass --fresh to start over (the old output is kept)"
        )
    old, new = state.identity, files.identity
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise JobError(
            f"request-shaping option(s) {', '.join(changed)} differ from the run that started "
            "this job; rerun with the same options, or pass --fresh to start over"
        )


def _recover(files: JobFiles, state: JobState, retry_failed: bool, notice: Callable[[str], None]) -> None:
    if retry_failed:
        dropped = rebuild_from_output(files.output, state, drop_failed=True)
        notice(f"--retry-failed: {dropped} failed record(s) will be sent again")
    else:
        n = recover_output(files.output, state)
        if n:
            notice(f"resume: {n} result line(s) written after the last checkpoint recovered")
    notice(f"resuming: {state.stats.done} record(s) already done in {state.runs} earlier run(s)")


def forget_unwritten(files: JobFiles) -> None:
    """Drop a job that wrote nothing (it stopped on a model the provider does not serve): its
    checkpoint holds the wrong name as the job's identity, and nothing would be lost or paid twice
    by starting afresh. An output that holds anything is kept, and so is the checkpoint."""
    if files.output.exists() and files.output.stat().st_size > 0:
        return
    files.checkpoint.unlink(missing_ok=True)
    files.output.unlink(missing_ok=True)
