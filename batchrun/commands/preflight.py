"""Checks made before anything is sent: every path the job will write can be written, the output
is not the input, and the process may open as many connections as the concurrency asks; and what
a first look at the input can tell a new user (`input_hints`: warnings only, the job runs as
asked): a `--model-field` that no record has (every record would go to `--model`, silently), and
an input that is a results file (every line would be a bad line)."""

from __future__ import annotations

import dataclasses
import gzip
import os
import resource
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

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


LOOK_LINES = 1000  # the first lines looked at
LOOK_BYTES = 4 << 20  # and at most this much of the file


def _first_objects(cfg: RunConfig) -> list[dict[str, Any]]:
    """The JSON objects among the input's first lines (a bad line is the job's to report)."""
    opener: Any = gzip.open if cfg.input.name.endswith(".gz") else open
    out: list[dict[str, Any]] = []
    read = 0
    try:
        with opener(cfg.input, "rb") as f:
            for _ in range(LOOK_LINES):
                line = f.readline(LOOK_BYTES)
                read += len(line)
                if not line or read > LOOK_BYTES:
                    break
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    except (OSError, EOFError, zlib.error):
        return []  # the job's own reading says what is wrong with the file
    return out


def input_hints(cfg: RunConfig, warn: Callable[[str], None]) -> None:
    """Warn once of what the first lines show (nothing read past LOOK_LINES)."""
    objs = _first_objects(cfg)
    if objs and all("response" in o and "error" in o and "custom_id" in o for o in objs[:10]):
        warn(f"{cfg.input} looks like a results file (its lines have custom_id, response and error): every "
             "line will be a bad line; pass the job's input file instead")
        return
    field = cfg.model_field
    plain = [o for o in objs if "messages" not in o and not isinstance(o.get("body"), dict)]
    if field is None or not plain or any(field in o for o in plain):
        return
    seen = sorted({k for o in plain[:50] for k in o})
    goes = f"they go to --model {cfg.model}" if cfg.model else "they name no model"
    warn(f"--model-field {field}: none of the first {len(plain)} plain record(s) has a field {field!r} "
         f"(fields seen: {', '.join(seen[:12])}); {goes}")
