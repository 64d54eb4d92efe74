"""Is the input JSONL at all? A look at a file's first bytes before anything is sent: a
compressed file, binary data or a CSV would otherwise become hundreds of invalid-line results
and a "complete" job."""

from __future__ import annotations

import zlib
from pathlib import Path

import orjson

from batchrun.errors import InputError, reading
from batchrun.input.gz import GZIP_MAGIC, Gunzip

HEAD = 64 << 10  # enough for the first lines of any JSONL worth sniffing
FIRST_LINES = 5  # lines that all look like no JSON at all: not a JSONL file

# magic numbers of files people compress or archive JSONL into
_MAGIC = (
    (b"(\xb5/\xfd", "zstd-compressed", "decompress it first (zstd -d {path})"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2 -k {path})"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (unxz -k {path})"),
    (b"PK\x03\x04", "a zip archive", "extract the JSONL file from it first"),
)


def sniff_input(path: Path) -> None:
    """Raise InputError (exit 2) with one sentence when the file's first lines are not JSON (a path
    that is no file is left to the checks that say so)."""
    if not path.is_file():
        return
    with reading("input file", path), open(path, "rb") as f:
        head = f.read(HEAD)
    if head.startswith(GZIP_MAGIC):  # read as it is (input/lines): what matters is what it holds
        try:
            head = next(Gunzip(HEAD).feed(head), b"")
        except zlib.error as e:
            raise InputError(f"input file {path} is not a readable gzip file ({e})") from None
    if reason := not_jsonl(head, str(path)):
        raise InputError(f"input file {path} {reason}")


def _jsonish(line: bytes) -> bool:
    """JSON, or broken JSON (an object or array cut short): a line of a JSONL file."""
    if line[:1] in (b"{", b"["):
        return True
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def not_jsonl(head: bytes, name: str) -> str | None:
    """What the file looks like instead of JSONL (a phrase after its name), or None when its
    first lines may be JSON (a broken JSON line is the line's own error, not the file's)."""
    for magic, what, fix in _MAGIC:
        if head.startswith(magic):
            return f"is {what}, not JSONL: {fix.format(path=name)}"
    if b"\x00" in head:
        kind = "UTF-16 text" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "binary data (it has NUL bytes)"
        return f"holds {kind}, not JSONL: give a UTF-8 file with one JSON object per line"
    head = head.removeprefix(b"\xef\xbb\xbf")
    lines = [ln.strip() for ln in head.split(b"\n")[:-1 if len(head) == HEAD else None]]
    first = [ln for ln in lines if ln][:FIRST_LINES]
    if not first or any(_jsonish(ln) for ln in first):
        return None
    shown = first[0][:60].decode("utf-8", errors="replace")
    if any(sep in first[0] for sep in (b",", b"\t", b";")):
        return (f"looks like CSV, not JSONL (its first line is {shown!r}): convert it to one JSON object per "
                "line (the header's names as keys)")
    return (f"does not start with JSON (its first line is {shown!r}): batchrun reads JSONL, one JSON object "
            "per line")
