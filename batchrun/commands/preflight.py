"""Checks made before anything is sent: every path the job will write can be written, the output
is not the input, and the process may open as many connections as the concurrency asks."""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Callable
from pathlib import Path

from batchrun.config import RunConfig
from batchrun.errors import ConfigError
from batchrun.store.files import job_files, refuse_job_file

# Files a job keeps open besides its connections: input, output, checkpoint, lock, log, Python's own.
SPARE_FILES = 64


def check_paths(cfg: RunConfig, html_report: Path | None = None) -> None:
    """One sentence and exit 2 for a path the job could not write, before anything is sent."""
    if cfg.output.exists() and cfg.input.exists() and _same_file(cfg.output, cfg.input):
        raise ConfigError(f"-o {cfg.output} names the input file itself; write the results elsewhere")
    _writable_file(cfg.output, "-o/--output", make_parents=True)
    files = job_files(cfg.input, cfg.output)
    for flag, path in (("--log-file", cfg.log_file), ("--summary-json", cfg.summary_json),
                       ("--html-report", html_report)):
        if path is not None:
            refuse_job_file(flag, path, files)
            if flag != "--html-report":  # the report checks its own path (commands/report.check_html_path)
                _writable_file(path, flag, make_parents=False)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _writable_file(path: Path, flag: str, make_parents: bool) -> None:
    if path.exists():
        if not path.is_file():
            raise ConfigError(f"{flag} {path} is not a regular file")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{flag} {path} is not writable")
        return
    parent = path.parent
    if not make_parents and not parent.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {parent} does not exist")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot create files in {parent}")


def fit_open_files(cfg: RunConfig, notice: Callable[[str], None]) -> RunConfig:
    """Raise the soft limit on open files to what the concurrency needs where the hard limit
    allows; else cap the concurrency to what fits, and say so once."""
    need = cfg.concurrency + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return cfg
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft >= need:
        return cfg
    fits = max(1, soft - SPARE_FILES)
    notice(f"--concurrency {cfg.concurrency} needs {need} open files but this process may open "
           f"{soft} (ulimit -n): running with --concurrency {fits}")
    return dataclasses.replace(cfg, concurrency=fits)
