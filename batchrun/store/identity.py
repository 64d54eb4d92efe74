"""What makes a job the same job: the input's size and digest."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

from batchrun.errors import InputError
from batchrun.input.gz import GZIP_MAGIC, Gunzip

CHUNK = 1 << 20


def fingerprint(path: Path, span: tuple[int, int] | None = None) -> tuple[dict[str, Any], int]:
    """Size and BLAKE2b of the input (as stored: a `.jsonl.gz` as compressed), and its line count
    (a gzip file's as uncompressed, checked whole here: a corrupt or cut-short one is refused).
    With `span` (a part's bytes, --part K/N; never of a gzip file), the digest and count cover
    those bytes only, and the file's size with the span's ends says the lines before it are where
    they were."""
    h = hashlib.blake2b(digest_size=16)
    lines = 0
    last = b"\n"
    size = 0
    gz: Gunzip | None = None
    start, end = span if span is not None else (0, -1)
    with open(path, "rb") as f:
        if span is not None:
            f.seek(start)
        left = end - start
        while left != 0 and (chunk := f.read(CHUNK if left < 0 else min(CHUNK, left))):
            left = left - len(chunk) if left > 0 else left
            h.update(chunk)
            size += len(chunk)
            if span is None and size == len(chunk) and chunk.startswith(GZIP_MAGIC):
                gz = Gunzip(CHUNK)
            try:
                for text in gz.feed(chunk) if gz is not None else (chunk,):
                    lines += text.count(b"\n")
                    last = text[-1:]
            except zlib.error as e:
                raise InputError(f"input file {path} is not a readable gzip file ({e})") from None
    if gz is not None and not gz.finished():
        raise InputError(f"input file {path} is a gzip file cut short (its end is missing): copy it whole again")
    if span is not None:
        return {"size": path.stat().st_size, "part_bytes": [start, end], "blake2b": h.hexdigest()}, (
            lines + (last != b"\n"))
    return {"size": size, "blake2b": h.hexdigest()}, lines + (last != b"\n")
