"""Stream the input file as numbered lines.

The file is read in chunks and split on newlines here, so memory stays flat whatever the file's
size and no line costs a thread hop of its own. A gzip file is read through its decompression,
chunk by chunk: its lines are numbered as the uncompressed file's."""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles

from batchrun.errors import InputError, reading
from batchrun.input.gz import GZIP_MAGIC, Gunzip

# 256 KB: a chunk's lines are held as one batch while they are parsed and queued (~3.5 k short
# records, under a MB with their bytes objects); a bigger chunk only raises the job's peak memory.
CHUNK = 1 << 18

DEFAULT_MAX_LINE_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class RawLine:
    """One non-blank line as bytes, or the reason it could not be taken whole."""

    number: int
    data: bytes
    too_long: bool = False


async def line_batches(
    path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, span: tuple[int, int, int] | None = None,
) -> AsyncGenerator[list[tuple[int, bytes | None]], None]:
    """Per chunk read, its complete non-blank lines as (1-based number, bytes).

    The bytes are None for a line longer than max_line_bytes, which is never buffered whole.
    `span` (start, end, lines before start) reads only those bytes, numbering on from there (a
    part of the file: input/parts).
    """
    start, end, number = span if span is not None else (0, -1, 0)
    with reading("input file", path):
        f = await aiofiles.open(path, "rb")
    chunks = _Chunks(f, path, end - start, sniff=start == 0)
    pending: list[bytes] = []  # the start of a line that continues in the next chunk
    pending_len = 0
    too_long = False
    try:
        if start:
            await f.seek(start)
        while chunk := await chunks.next():
            pieces = chunk.split(b"\n")
            tail = pieces.pop()
            out: list[tuple[int, bytes | None]] = []
            for piece in pieces:
                number += 1
                if pending or too_long:
                    if too_long or pending_len + len(piece) > max_line_bytes:
                        out.append((number, None))
                    else:
                        line = b"".join(pending) + piece
                        if not line.isspace():
                            out.append((number, line))
                    pending, pending_len, too_long = [], 0, False
                elif len(piece) > max_line_bytes:
                    out.append((number, None))
                elif piece and not piece.isspace():
                    out.append((number, piece))
            if tail and not too_long:
                pending_len += len(tail)
                if pending_len > max_line_bytes:
                    pending, too_long = [], True
                else:
                    pending.append(tail)
            if out:
                yield out
            chunk, pieces, out = b"", [], []  # let go before the next read: two chunks' worth is the peak
        if too_long:
            yield [(number + 1, None)]
        elif pending:
            line = b"".join(pending)
            if not line.isspace():
                yield [(number + 1, line)]
    finally:
        # shielded: a stop cancels the reader (pipeline.run) and may land while this close is on
        # its thread hop; unshielded, the close is dropped and the file leaks (a ResourceWarning)
        await asyncio.shield(f.close())


class _Chunks:
    """The file's bytes in chunks; a gzip file's decompressed as it streams (`.jsonl.gz` read as it
    is). A plain object, not a generator: the reader's `finally` has only the file to close."""

    def __init__(self, f: Any, path: Path, left: int = -1, sniff: bool = True) -> None:
        self.f = f
        self.path = path
        self.left = left  # bytes still to read (a part of the file); negative: to the end
        self.gz: Gunzip | None = None
        self.started = not sniff  # a part's bytes start mid-file: only a file's start says gzip
        self.pieces: deque[bytes] = deque()  # decompressed, at most a chunk each
        self.bom = sniff  # only a file's start may have one

    async def next(self) -> bytes:
        """The next chunk; b"" at the end."""
        chunk = await self._next()
        if self.bom and chunk:  # files saved by Windows tools often start with a UTF-8 byte-order mark
            self.bom = False
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:] or await self._next()  # b"" would read as the end
        return chunk

    async def _next(self) -> bytes:
        while not self.pieces:
            if self.left == 0:
                return b""
            chunk = await self.f.read(CHUNK if self.left < 0 else min(CHUNK, self.left))
            self.left = self.left - len(chunk) if self.left > 0 else self.left
            if not self.started:
                self.started = True
                self.gz = Gunzip(CHUNK) if chunk.startswith(GZIP_MAGIC) else None
            if self.gz is None or not chunk:
                return chunk
            try:
                self.pieces.extend(self.gz.feed(chunk))
            except zlib.error as e:
                raise InputError(f"input file {self.path} is not a readable gzip file ({e})") from None
        return self.pieces.popleft()


async def raw_lines(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> AsyncIterator[RawLine]:
    """The non-blank lines of a file one by one (a convenience over line_batches)."""
    async for batch in line_batches(path, max_line_bytes):
        for number, data in batch:
            yield RawLine(number, b"" if data is None else data, too_long=data is None)

