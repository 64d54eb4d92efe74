"""What makes a job the same job: the input's size and digest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def fingerprint(path: Path, span: tuple[int, int] | None = None) -> tuple[dict[str, Any], int]:
    """Size and BLAKE2b of the input, and its line count, in one read. With `span` (a part's
    bytes, --part K/N), the digest and count cover those bytes only: a part reads nothing else,
    and the file's size with the span's ends says the lines before it are where they were."""
    h = hashlib.blake2b(digest_size=16)
    lines = 0
    last = b"\n"
    size = 0
    start, end = span if span is not None else (0, -1)
    with open(path, "rb") as f:
        if span is not None:
            f.seek(start)
        left = end - start
        while left != 0 and (chunk := f.read(1 << 20 if left < 0 else min(1 << 20, left))):
            left = left - len(chunk) if left > 0 else left
            h.update(chunk)
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    if span is not None:
        full = path.stat().st_size
        return {"size": full, "part_bytes": [start, end], "blake2b": h.hexdigest()}, lines + (last != b"\n")
    return {"size": size, "blake2b": h.hexdigest()}, lines + (last != b"\n")

