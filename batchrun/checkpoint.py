"""Job state for resume: what is done, what it cost, and who holds the job.

The output file is the truth; the checkpoint is a fast index into it. A checkpoint says "the
first `output_offset` bytes of the output hold exactly the records marked done, and these are
their counts". It is saved (atomically: temp file, fsync, rename) only after the output has been
fsynced up to that offset, so it never claims more than is on disk. On resume the lines past the
offset are read back and counted, and a torn last line is cut off: that record was in flight and
is sent again. So after kill -9 at any moment, each record ends with exactly one line.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrun.errors import JobError
from batchrun.records import Result, parse_result_line
from batchrun.stats import JobStats

VERSION = 1


def checkpoint_path(output: Path) -> Path:
    """Where a job's checkpoint lives: beside its output."""
    return output.with_name(output.name + ".checkpoint")


def lock_path(output: Path) -> Path:
    """The job's lock file, holding the running process's PID."""
    return output.with_name(output.name + ".lock")


@dataclass(slots=True)
class Done:
    """A bitmap of done line numbers: 1 M lines in 125 KB."""

    bits: bytearray = field(default_factory=bytearray)

    def add(self, line: int) -> None:
        """Mark a line done."""
        i = line >> 3
        if i >= len(self.bits):
            self.bits.extend(bytes(i + 1 - len(self.bits) + 4096))
        self.bits[i] |= 1 << (line & 7)

    def __contains__(self, line: int) -> bool:
        i = line >> 3
        return i < len(self.bits) and bool(self.bits[i] & (1 << (line & 7)))

    def encode(self) -> str:
        """Compact text form for the checkpoint file."""
        return base64.b64encode(zlib.compress(bytes(self.bits).rstrip(b"\0"), 1)).decode()

    @classmethod
    def decode(cls, text: str) -> Done:
        """Inverse of encode()."""
        return cls(bytearray(zlib.decompress(base64.b64decode(text))))


@dataclass(slots=True)
class JobState:
    """Everything a rerun needs to carry on where the last run stopped."""

    input_fingerprint: dict[str, Any]
    identity: dict[str, Any]
    output_offset: int = 0
    done: Done = field(default_factory=Done)
    stats: JobStats = field(default_factory=JobStats)
    runs: int = 0
    elapsed_s: float = 0.0
    total: int | None = None
    last_run: dict[str, Any] = field(default_factory=dict)

    def record(self, r: Result) -> None:
        """A result line was written."""
        self.done.add(r.line)
        self.stats.add(r)

    def to_bytes(self) -> bytes:
        """The checkpoint file's content."""
        return orjson.dumps(
            {
                "version": VERSION,
                "input": self.input_fingerprint,
                "identity": self.identity,
                "output_offset": self.output_offset,
                "done": self.done.encode(),
                "stats": self.stats.to_state(),
                "runs": self.runs,
                "elapsed_s": self.elapsed_s,
                "total": self.total,
                "last_run": self.last_run,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> JobState:
        """Parse a checkpoint file; raises ValueError/KeyError if it is not one."""
        d = orjson.loads(data)
        if d.get("version") != VERSION:
            raise ValueError(f"checkpoint version {d.get('version')!r}")
        return cls(
            input_fingerprint=d["input"],
            identity=d["identity"],
            output_offset=int(d["output_offset"]),
            done=Done.decode(d["done"]),
            stats=JobStats.from_state(d["stats"]),
            runs=int(d["runs"]),
            elapsed_s=float(d["elapsed_s"]),
            total=d.get("total"),
            last_run=d.get("last_run") or {},
        )


def save_atomic(path: Path, data: bytes) -> None:
    """Replace a file so that a crash leaves either the old or the new content, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_state(path: Path) -> JobState | None:
    """The saved state, None if there is none; JobError if it is unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return JobState.from_bytes(data)
    except (ValueError, KeyError, TypeError, zlib.error) as e:
        raise JobError(
            f"checkpoint {path} is unreadable ({e}); run with --fresh to start the job over"
        ) from None


def fingerprint(path: Path) -> tuple[dict[str, Any], int]:
    """Size and BLAKE2b of the input, and its line count, in one read."""
    h = hashlib.blake2b(digest_size=16)
    lines = 0
    last = b"\n"
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    return {"size": size, "blake2b": h.hexdigest()}, lines + (last != b"\n")


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
        torn = False
        for raw in f:
            if not raw.endswith(b"\n"):
                torn = True
                break
            pos += len(raw)
            if not raw.strip():
                continue
            try:
                r = parse_result_line(raw)
            except ValueError:
                continue  # not one of ours: leave it, count nothing
            if r.line and r.line not in state.done:
                state.record(r)
                n += 1
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
    state.stats = JobStats()
    save_atomic(checkpoint_path(output), state.to_bytes())
    dropped = 0
    if drop_failed and output.exists():
        tmp = output.with_name(output.name + ".rewrite")
        with open(output, "rb") as src, open(tmp, "wb") as dst:
            for raw in src:
                if not raw.endswith(b"\n"):
                    break
                try:
                    r = parse_result_line(raw)
                except ValueError:
                    continue
                if not r.ok and not r.invalid:
                    dropped += 1
                    continue
                dst.write(raw)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, output)
    recover_output(output, state)
    return dropped


class JobLock:
    """One process per job: an flock'd file holding the PID (released by the OS if we die)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.stale_pid: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise JobError naming the holder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise JobError(f"cannot create the job's lock file {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise JobError(
                f"another batchrun process (PID {holder}) is running this job now; "
                "wait for it to finish or stop it first"
            ) from None
        old = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if old.isdigit() and int(old) != os.getpid():
            self.stale_pid = int(old)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Drop the lock and its file."""
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def lock_holder(path: Path) -> int | None:
    """The PID holding a job's lock right now, or None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 64, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def now_iso() -> str:
    """UTC timestamp for last_run."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
