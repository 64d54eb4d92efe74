"""One process per job: the lock beside the output."""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from batchrun.clock import now_iso
from batchrun.errors import JobBusy, JobError


def lock_path(output: Path) -> Path:
    """The job's lock file, holding the running process's PID, host and start time."""
    return output.with_name(output.name + ".lock")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a lock, as its file says: `PID [host [since]]` (older files hold the PID only)."""

    pid: int | None
    host: str | None = None
    since: str | None = None

    @classmethod
    def parse(cls, text: str) -> Holder:
        parts = text.split()
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        return cls(pid, parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)

    def describe(self) -> str:
        """`PID 123 on host since 2026-...`, saying what is known."""
        return (f"PID {self.pid if self.pid is not None else 'unknown'}"
                + (f" on {self.host}" if self.host else "") + (f", running since {self.since}" if self.since else ""))


def _read(fd: int) -> Holder:
    return Holder.parse(os.pread(fd, 256, 0).decode(errors="replace"))


class JobLock:
    """One process per job: an flock'd file holding the PID (released by the OS if we die)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.stale_pid: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise JobBusy naming the holder (JobError if no lock file can be made)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise JobError(f"cannot create the job's lock file {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise JobBusy(
                f"another batchrun process ({holder.describe()}) is running this job now; "
                "wait for it to finish or stop it first"
            ) from None
        old = _read(fd).pid
        if old is not None and old != os.getpid():
            self.stale_pid = old
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname() or 'unknown'} {now_iso()}\n".encode(), 0)
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
    """The PID holding a job's lock right now (-1 if its file does not say), or None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pid = _read(fd).pid
            return -1 if pid is None else pid
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
