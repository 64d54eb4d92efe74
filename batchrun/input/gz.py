"""Reading a gzip-compressed input (`.jsonl.gz`) as its lines: streamed, one chunk in, at most
one chunk out at a time, so memory stays flat whatever the file's size or compression ratio."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

GZIP_MAGIC = b"\x1f\x8b"


class Gunzip:
    """Decompresses a gzip stream fed in chunks (several members one after another, as `cat a.gz
    b.gz` makes, read as one stream, as gzip does)."""

    def __init__(self, out_max: int) -> None:
        self.out_max = out_max
        self._d = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decompressed bytes of `data`, in pieces of at most out_max bytes. zlib.error for a
        stream that is not gzip or is corrupt."""
        while data:
            out = self._d.decompress(data, self.out_max)
            if out:
                yield out
            if self._d.eof:  # a member ended: what follows is the next member (or padding)
                data = self._d.unused_data
                if not data.strip(b"\x00"):
                    return
                self._d = zlib.decompressobj(wbits=31)
            else:
                data = self._d.unconsumed_tail

    def finished(self) -> bool:
        """Whether the stream ended at the end of a member (else the file was cut short)."""
        return self._d.eof
