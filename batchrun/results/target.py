"""The file an export or a report is written to: checked before any work, then replaced whole.

A regular file is written aside (NAME.tmp) and renamed over the target, so a failed write never
leaves half a file that looks like a whole one. A target that exists and is not a regular file
(a character device such as /dev/null, a FIFO) is written to directly: renaming over it would
replace the device with a plain file, which as root breaks the machine. A symlink is followed,
so the rename replaces the file it points to and the link stays a link."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from batchrun.errors import ConfigError, WriteFailed


def check_target(path: Path, what: str) -> None:
    """Refuse, before any work, a path that cannot name the file `what` is written to: an
    empty name, a directory, a missing or unwritable directory."""
    text = str(path)
    if text in ("", ".") or path.name in ("", ".", ".."):
        raise ConfigError(f"{what} {text!r} names a directory, not a file")
    real = _real(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise ConfigError(f"cannot write {what} {path}: {e.strerror or e}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise ConfigError(f"cannot write {what} {path}: it is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        return  # written in place: its directory need not be writable
    parent = real.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {what} {path}: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} {path}: directory {parent} is not writable")


def _real(path: Path) -> Path:
    """Where writing `path` lands: a symlink's final target (which may not exist yet)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def is_special(path: Path) -> bool:
    """Whether `path` (after symlinks) exists and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextmanager
def replacing(path: Path, what: str, **open_args: Any) -> Iterator[IO[Any]]:
    """An open file whose content replaces `path` when the block ends without an error; on an
    error (or an interrupt) the temporary file is removed and `path` is left as it was.
    open_args go to open() (mode, encoding, newline)."""
    open_args.setdefault("mode", "w")
    real = _real(path)
    special = is_special(real)
    tmp = real if special else real.with_name(real.name + ".tmp")
    try:
        # inside the cleanup: an interrupt can land in open() after the file exists (the codec
        # lookup runs Python code)
        try:
            f = open(tmp, **open_args)  # noqa: SIM115 (closed below)
        except OSError as e:
            raise ConfigError(f"cannot write {what} {path}: {e.strerror or e}") from None
        with f:
            yield f
        if not special:
            os.replace(tmp, real)
    except OSError as e:
        raise WriteFailed(f"cannot write {what} {path}: {e.strerror or e}") from None
    finally:
        if not special and tmp.exists():
            tmp.unlink()
