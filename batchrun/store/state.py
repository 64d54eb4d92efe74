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
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrun.account.stats import JobStats
from batchrun.errors import JobError
from batchrun.records import Result
from batchrun.route.arms import Arms

VERSION = 1


def checkpoint_path(output: Path) -> Path:
    """Where a job's checkpoint lives: beside its output."""
    return output.with_name(output.name + ".checkpoint")


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
    rate_limit_wait_s: float = 0.0  # waited on rate limits, over the runs that ended cleanly
    batch: dict[str, Any] = field(default_factory=dict)  # a --batch-api job's plan (batch.plan); {} if none
    canary: dict[str, Any] | None = None  # the canary's state (route.canary.Canary.to_state)
    arms: Arms = field(default_factory=Arms)  # baseline and canary side by side
    deadline: dict[str, Any] | None = None  # --deadline fixed on its first run: {"at": epoch s, "given": WHEN}

    def record(self, r: Result) -> None:
        """A result line was written."""
        self.done.add(r.line)
        self.stats.add(r)
        if r.route is not None:
            self.arms.add(r)

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
                "rate_limit_wait_s": self.rate_limit_wait_s,
                "batch": self.batch,
                "canary": self.canary,
                "arms": self.arms.to_state(),
                "deadline": self.deadline,
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
            rate_limit_wait_s=float(d.get("rate_limit_wait_s") or 0.0),
            batch=d.get("batch") or {},  # older checkpoints have none
            canary=d.get("canary") if isinstance(d.get("canary"), dict) else None,
            arms=Arms.from_state(d.get("arms")),
            deadline=d.get("deadline") if isinstance(d.get("deadline"), dict) else None,  # older: none
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

