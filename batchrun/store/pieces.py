"""`<output>.pieces`: the answered pieces of `--chunk-long` records not yet written.

A record split in pieces is written once, when its last piece is answered; each piece answered
before that is appended here, so a crash re-sends only the pieces that were in flight. A piece
is taken back only for the same request (a digest of its body) of a record not yet done; the
file goes once the job is complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from batchrun.records import Record, Result
from batchrun.store.wire import parse_result_line, result_line


def pieces_path(output: Path) -> Path:
    """`<output>.pieces` beside the output."""
    return output.with_name(output.name + ".pieces")


def _digest(piece: Record) -> str:
    return hashlib.blake2b(orjson.dumps(piece.body, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


class PieceLog:
    """Answered pieces by (input line, piece number); appended as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: dict[tuple[int, int], tuple[str, bytes]] = {}
        self._fd = -1

    def open(self, done: Callable[[int], bool], fresh: bool) -> None:
        """Read what an earlier run kept for records still to do; then append to it."""
        if fresh:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # torn by a crash: that piece is sent again
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    doc = orjson.loads(raw)
                    line, index = int(doc["line"]), int(doc["piece"])
                    if not done(line):
                        self._saved[(line, index)] = (str(doc["digest"]), orjson.dumps(doc["result"]))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def answered(self, rec: Record, index: int) -> Result | None:
        """The piece's answer from an earlier run, if it was kept for this very request."""
        kept = self._saved.pop((rec.line, index), None)
        if kept is None or kept[0] != _digest(rec):
            return None
        body = orjson.loads(kept[1]).get("response", {}).get("body")
        return dataclasses.replace(parse_result_line(kept[1]), raw_body=orjson.dumps(body))

    def kept_cost_usd(self) -> float:
        """What the pieces kept by earlier runs cost: spent, though no line counts it yet."""
        return sum(parse_result_line(raw).cost_usd or 0.0 for _, raw in self._saved.values())

    def keep(self, rec: Record, index: int, result: Result) -> None:
        """Append an answered piece; failing to is no loss (the piece is sent again)."""
        if self._fd < 0:
            return
        doc = {"line": rec.line, "piece": index, "digest": _digest(rec),
               "result": orjson.Fragment(result_line(result).rstrip(b"\n"))}
        with contextlib.suppress(OSError):
            os.write(self._fd, orjson.dumps(doc) + b"\n")

    def close(self, complete: bool) -> None:
        """Close the file; remove it when the job is complete (no record is left to resume)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if complete:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
