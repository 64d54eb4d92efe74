"""The files of a job, which no output option may replace: the input, the results and what
is kept beside them (checkpoint, lock, shadow answers, Batch API shards)."""

from __future__ import annotations

import os
from pathlib import Path

from batchrun.errors import ConfigError
from batchrun.store.lock import lock_path
from batchrun.store.state import checkpoint_path


def shadow_path(output: Path) -> Path:
    """`<output stem>.shadow.jsonl` beside the output: the shadow model's answers."""
    return output.with_name(output.stem + ".shadow.jsonl")


def job_files(input_path: Path | None, output: Path) -> dict[str, Path]:
    """The files a job reads and keeps, which no other output may replace (the input where known)."""
    return {
        **({"the input": input_path} if input_path is not None else {}),
        "the results": output, "the checkpoint": checkpoint_path(output),
        "the lock": lock_path(output), "the shadow answers": shadow_path(output),
        "the Batch API shards": output.with_name(output.name + ".batches"),
        "the answered pieces": output.with_name(output.name + ".pieces"),
    }


def refuse_job_file(flag: str, path: Path, files: dict[str, Path]) -> None:
    """ConfigError when `path` (through any symlink) is one of the job's own files."""
    real = os.path.realpath(path)
    for what, kept in files.items():
        if real == os.path.realpath(kept):
            raise ConfigError(f"{flag} {path} is {what} of this job: writing there would destroy it; "
                              "name another file")
