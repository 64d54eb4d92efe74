"""An index of a results file by input line number: where each line's result starts.

A results file is in completion order; joining it to its input in input order must not hold
every answer in memory. The index is one array of byte offsets (8 bytes an input line, 8 MB
for a million), and a result is read back with one seek when its turn comes.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from batchrun.errors import InputError, reading
from batchrun.records import Result
from batchrun.results.answer import answer_object, answer_text
from batchrun.store.wire import parse_result_line, read_result_lines

FILE_SHIFT = 48  # an offset below 256 TiB; the results file's number above it
OFFSET_MASK = (1 << FILE_SHIFT) - 1
MAX_ANSWER_FIELDS = 200  # columns, for --parse-json; a file of free-form objects would add one a row


@dataclass(slots=True)
class IndexCounts:
    """What building the index found besides the results it indexed."""

    results: int = 0
    foreign: int = 0  # non-blank lines that are not result lines
    outside: int = 0  # result lines naming no line of the input (another input file?)
    mismatched: int = 0  # result lines whose key is not their input line's (with build's keys)
    answer_fields: dict[str, None] = field(default_factory=dict)  # ordered set, first seen first
    answer_fields_dropped: int = 0


class ResultIndex:
    """Offsets of result lines by the input line they answer; the last one wins (a line written
    again by `--retry-failed` replaces the earlier one)."""

    def __init__(self, path: Path | Sequence[Path], last_line: int) -> None:
        # several results files (the parts of one job, --part K/N) index as one
        self.paths = [path] if isinstance(path, Path) else list(path)
        self.path = self.paths[0] if len(self.paths) == 1 else Path(", ".join(map(str, self.paths)))
        # (file number << FILE_SHIFT) | (offset + 1); 0: no result
        self.offsets = array("q", bytes(8 * (last_line + 1)))
        self.counts = IndexCounts()
        self._files: list[BinaryIO] = []

    def build(self, answer_fields: bool = False, keys: array[int] | None = None) -> IndexCounts:
        """Read the whole results file once; with answer_fields, also collect the field names of
        answers that are JSON objects; with keys (each input line's key_hash), count the results
        keyed unlike their line. Raises InputError for a file with no result lines, unless the
        input holds no record either (an empty job's results are empty too)."""
        c, last = self.counts, len(self.offsets) - 1
        for number, path in enumerate(self.paths):
            self._build_one(number, path, answer_fields, keys)
        if not c.results and (last or c.outside or c.foreign):
            if c.outside:
                raise InputError(f"{self.path} does not answer this input: none of its {c.outside} result "
                                 "lines names a line the input has")
            if c.foreign:
                raise InputError(f"{self.path} is not a batchrun results file: none of its {c.foreign} "
                                 "lines is a result line")
            raise InputError(f"{self.path} holds no result lines")
        return c

    def _build_one(self, number: int, path: Path, answer_fields: bool, keys: array[int] | None) -> None:
        c, offsets, last = self.counts, self.offsets, len(self.offsets) - 1
        offset, tag = 0, number << FILE_SHIFT
        with reading("results file", path), open(path, "rb") as f:
            for line in read_result_lines(f):
                r = line.result
                if r is None:
                    c.foreign += bool(line.raw.strip())
                elif 1 <= r.line <= last:
                    c.results += 1
                    offsets[r.line] = tag | (offset + 1)
                    if keys is not None and not _keyed_for(r, keys[r.line]):
                        c.mismatched += 1
                    if answer_fields and r.ok:
                        self._add_fields(answer_object(answer_text(_body(line.raw))))
                else:
                    c.outside += 1
                offset += len(line.raw)

    def _add_fields(self, obj: dict[str, Any] | None) -> None:
        if obj is None:
            return
        fields = self.counts.answer_fields
        for name in obj:
            if name not in fields:
                if len(fields) >= MAX_ANSWER_FIELDS:
                    self.counts.answer_fields_dropped += 1
                else:
                    fields[name] = None

    def __enter__(self) -> ResultIndex:
        for path in self.paths:
            with reading("results file", path):
                self._files.append(open(path, "rb"))  # noqa: SIM115 (closed by __exit__)
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files:
            f.close()

    def get(self, line: int) -> tuple[Result, Any] | None:
        """The result for an input line and its response body, or None if it has none."""
        entry = self.offsets[line] if line < len(self.offsets) else 0
        number, offset = entry >> FILE_SHIFT, (entry & OFFSET_MASK) - 1
        if offset < 0 or number >= len(self._files):
            return None
        with reading("results file", self.paths[number]):
            f = self._files[number]
            f.seek(offset)
            raw = f.readline()
        return parse_result_line(raw), _body(raw)


def key_hash(key: str) -> int:
    """A key as 8 bytes, for a check of every line without holding every key; never 0 (no line)."""
    return hash(key) or 1


def _keyed_for(r: Result, line_key: int) -> bool:
    """A result belongs to its line under the line's own key, or as the line's bad-line result
    (keyed line-N even where the line names a key: a duplicate)."""
    return line_key != 0 and (key_hash(r.key) == line_key or r.key == f"line-{r.line}")


def _body(raw: bytes) -> Any:
    """A result line's response body (parse_result_line leaves it out to keep resume lean)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    response = doc.get("response") if isinstance(doc, dict) else None
    return response.get("body") if isinstance(response, dict) else None
