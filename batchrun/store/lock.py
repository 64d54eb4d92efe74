"""One process per job: the lock beside the output."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from batchrun.errors import JobError


def lock_path(output: Path) -> Path:
    """The job's lock file, holding the running process's PID."""
    return output.with_name(output.name + ".lock")


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

