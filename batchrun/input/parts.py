"""One job in parts (`--part K/N`): which bytes of the input are part K's.

Parts split the file by bytes, as Hadoop's input splits do: part K's nominal range is the K-th
N-th of the file's size, and both of its ends move forward to the next line start, so a line
belongs to the part its first byte lies in. A part reads (and JSON-decodes) only its own lines;
the newlines before its range are counted (no decoding) so that its lines keep their numbers in
the whole file (`line-N` keys, export order). Parts are disjoint and together cover every line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from batchrun.errors import ConfigError, InputError

CHUNK = 1 << 20
_PART = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True, slots=True)
class Part:
    """Part k of n, 1-based."""

    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


@dataclass(frozen=True, slots=True)
class Span:
    """The bytes of one part: [start, end), and the lines of the file before `start`."""

    start: int
    end: int
    lines_before: int
    lines: int  # lines in the span (a last line without a newline counts)

    def bounds(self) -> tuple[int, int, int]:
        """What line_batches reads: start, end, lines before."""
        return self.start, self.end, self.lines_before


def parse_part(text: object) -> Part:
    """`K/N` with 1 ≤ K ≤ N; ValueError otherwise."""
    m = _PART.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError
    k, n = int(m[1]), int(m[2])
    if not 1 <= k <= n:
        raise ValueError
    return Part(k, n)


def part_of(part: Part | None, parts: int | None, env: Mapping[str, str]) -> Part | None:
    """--part K/N as given, else with --parts N the scheduler's index, else None."""
    if part is not None and parts:
        raise ConfigError(f"--part {part} and --parts {parts} both say which part this is: give one (--part K/N, "
                          "or --parts N with the scheduler's index)")
    return part if part is not None or not parts else part_from_env(parts, env)


def part_from_env(parts: int, env: Mapping[str, str]) -> Part:
    """`--parts N`: this process's part from the scheduler: a Kubernetes Indexed Job's
    JOB_COMPLETION_INDEX (0-based), else a Slurm array's SLURM_ARRAY_TASK_ID (counted from
    SLURM_ARRAY_TASK_MIN)."""
    if "JOB_COMPLETION_INDEX" in env:
        raw, base, name = env["JOB_COMPLETION_INDEX"], "0", "JOB_COMPLETION_INDEX"
    elif "SLURM_ARRAY_TASK_ID" in env:
        raw, base, name = env["SLURM_ARRAY_TASK_ID"], env.get("SLURM_ARRAY_TASK_MIN", "0"), "SLURM_ARRAY_TASK_ID"
    else:
        raise ConfigError("--parts needs the part's index from the scheduler: JOB_COMPLETION_INDEX (Kubernetes "
                          "Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array) is not set; use --part K/N instead")
    try:
        k = int(raw) - int(base) + 1
    except ValueError:
        raise ConfigError(f"environment {name} is not a whole number: {raw!r}") from None
    if not 1 <= k <= parts:
        raise ConfigError(f"environment {name}={raw} is outside --parts {parts} (part {k} of {parts})")
    return Part(k, parts)


def part_output_name(stem: str, part: Part) -> str:
    """The default results file of a part."""
    return f"{stem}.part-{part.k}-of-{part.n}.results.jsonl"


def span(path: Path, part: Part) -> Span:
    """Part's bytes of the file at `path`, aligned to line starts, and its line numbering."""
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":  # a gzip file has no line starts to split on
            raise InputError(f"--part splits {path} by byte ranges, which a gzip file cannot be split at: "
                             "decompress it first (gunzip -k)")
        size = os.fstat(f.fileno()).st_size
        start = _line_start(f, size * (part.k - 1) // part.n)
        end = _line_start(f, size * part.k // part.n) if part.k < part.n else size
        before = _count(f, 0, start)
        inside = _count(f, start, end)
        if end > start:  # a last line with no newline is a line too
            f.seek(end - 1)
            inside += f.read(1) != b"\n"
    return Span(start, end, before, inside)


def _line_start(fb: BinaryIO, at: int) -> int:
    """The first line start at or after byte `at` (a line starting exactly there counts)."""
    if at == 0:
        return 0
    fb.seek(at - 1)
    pos = at - 1
    while chunk := fb.read(CHUNK):
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(chunk)
    return pos


def _count(fb: BinaryIO, start: int, end: int) -> int:
    """Newlines in [start, end): counted in C, nothing decoded."""
    fb.seek(start)
    n, left = 0, end - start
    while left > 0 and (chunk := fb.read(min(CHUNK, left))):
        n += chunk.count(b"\n")
        left -= len(chunk)
    return n
