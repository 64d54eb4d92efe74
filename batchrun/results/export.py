"""`batchrun export`: results joined to their input records, one row per input line, in input
order, as CSV or JSONL. Three streaming passes: the input (its fields, for one CSV header), the
results (an index by line number), then the input again, each line joined to its result."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from batchrun.errors import ConfigError, InputError, WriteFailed
from batchrun.input.keys import BadKey, record_key
from batchrun.input.lines import DEFAULT_MAX_LINE_BYTES, line_batches
from batchrun.records import Result
from batchrun.results.answer import answer_object, answer_text, cell
from batchrun.results.index import IndexCounts, ResultIndex

FORMATS = ("csv", "jsonl")
MAX_INPUT_FIELDS = 200
_OURS = ("key", "line", "status", "model", "answer", "error_code", "error_message", "input_tokens",
         "output_tokens", "cost_usd")


@dataclass(frozen=True, slots=True)
class ExportCounts:
    """What an export wrote, for the line the command prints."""

    rows: int
    by_status: dict[str, int]
    mismatched: int  # a result whose key is not its input line's: shown as missing
    index: IndexCounts
    input_fields_dropped: int


async def input_fields(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> tuple[int, dict[str, None], int]:
    """The input's last line number, the names of its top-level scalar fields (first seen first)
    and how many more names there were than MAX_INPUT_FIELDS."""
    last, fields, dropped = 0, dict[str, None](), 0
    async with aclosing(line_batches(path, max_line_bytes)) as batches:
        async for batch in batches:
            last = batch[-1][0]
            for _, data in batch:
                obj = _object(data)
                for name, value in obj.items() if obj else ():
                    if name not in fields and _scalar(value):
                        if len(fields) < MAX_INPUT_FIELDS:
                            fields[name] = None
                        else:
                            dropped += 1
    return last, fields, dropped


def _object(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if type(obj) is dict else None


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _column(name: str) -> str:
    """An input field's column: its own name, unless one of ours has it."""
    return f"input.{name}" if name in _OURS else name


def columns(fields: dict[str, None], answer_fields: dict[str, None]) -> list[str]:
    """The header: key and line, the input's fields, then what became of the record."""
    return [*_OURS[:2], *(_column(f) for f in fields), *_OURS[2:], *(f"answer.{f}" for f in answer_fields)]


def status_of(r: Result | None) -> str:
    """ok / failed / invalid / missing."""
    if r is None:
        return "missing"
    return "invalid" if r.invalid else "ok" if r.ok else "failed"


def make_row(n: int, obj: dict[str, Any] | None, fields: dict[str, None], found: tuple[Result, Any] | None,
             answer_fields: dict[str, None]) -> dict[str, Any]:
    """One row: an input line (obj None when it is not a JSON object) and its result, if any."""
    r, body = found if found else (None, None)
    # a bad line's result is keyed line-N even where the line names a key (a duplicate)
    row: dict[str, Any] = {"key": r.key if r else _key(n, obj), "line": n}
    for name in fields:
        value = obj.get(name) if obj else None
        row[_column(name)] = value if _scalar(value) else None
    text = answer_text(body) if r is not None and r.ok else None
    row |= {
        "status": status_of(r),
        "model": r.model if r else None,
        "answer": text,
        "error_code": r.error_code if r else None,
        "error_message": r.error_message if r else None,
        "input_tokens": r.usage.input_tokens if r and not r.invalid else None,
        "output_tokens": r.usage.output_tokens if r and not r.invalid else None,
        "cost_usd": r.cost_usd if r else None,
    }
    if answer_fields:
        parsed = answer_object(text) or {}
        for name in answer_fields:
            row[f"answer.{name}"] = cell(parsed.get(name))
    return row


def _key(n: int, obj: dict[str, Any] | None) -> str:
    try:
        return record_key(obj, n) if obj is not None else f"line-{n}"
    except BadKey:
        return f"line-{n}"


def _matches(row_key: str, n: int, r: Result) -> bool:
    """A result belongs to line n under the line's own key, or as the line's bad-line result."""
    return r.key == row_key or r.key == f"line-{n}"


async def export(
    results: Path, input: Path, output: Path | None, fmt: str = "csv", parse_json: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ExportCounts:
    """Write one row per non-blank input line, in input order, to output (None: stdout)."""
    if output is not None and any(_same(output, p) for p in (results, input)):
        raise ConfigError(f"-o {output} would overwrite the file it is made from")
    last, fields, fields_dropped = await input_fields(input, max_line_bytes)
    index = ResultIndex(results, last)
    found_fields = index.build(answer_fields=parse_json)
    answer_fields = found_fields.answer_fields
    by_status = dict.fromkeys(("ok", "failed", "invalid", "missing"), 0)
    rows = mismatched = 0
    with index, _writing(output, fmt) as out:
        write = _row_writer(out, fmt, columns(fields, answer_fields))
        async with aclosing(line_batches(input, max_line_bytes)) as batches:
            async for batch in batches:
                for n, data in batch:
                    obj = _object(data)
                    found = index.get(n)
                    if found is not None and not _matches(_key(n, obj), n, found[0]):
                        mismatched += 1
                        found = None
                    row = make_row(n, obj, fields, found, answer_fields)
                    by_status[row["status"]] += 1
                    rows += 1
                    write(row)
        if mismatched and rows - by_status["missing"] == 0:  # raised before a wrong file replaces -o
            raise InputError(f"{results} does not answer {input}: no result carries its input line's key")
    return ExportCounts(rows, by_status, mismatched, found_fields, fields_dropped)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


@contextmanager
def _writing(output: Path | None, fmt: str) -> Iterator[TextIO]:
    """The stream rows go to: stdout, or a temporary file renamed over `output` once whole, so
    a failed export never leaves half a file that looks like a whole one."""
    if output is None or str(output) == "-":
        yield sys.stdout
        return
    tmp = output.with_name(output.name + ".tmp")
    try:
        # Excel reads a CSV as UTF-8 only when it starts with a byte-order mark
        f = open(tmp, "w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")  # noqa: SIM115
    except OSError as e:
        raise ConfigError(f"cannot write {output}: {e.strerror or e}") from None
    try:
        with f:
            yield f
        os.replace(tmp, output)
    except OSError as e:
        raise WriteFailed(f"cannot write {output}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _row_writer(out: TextIO, fmt: str, header: list[str]) -> Any:
    if fmt == "jsonl":
        return lambda row: out.write(orjson.dumps(row).decode() + "\n")
    w = csv.writer(out, quoting=csv.QUOTE_ALL)
    w.writerow(header)
    return lambda row: w.writerow([_csv_cell(v) for v in row.values()])


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = repr(v)
        if "e-" in text and abs(v) >= 1e-12:  # a cost of 1.05e-05 reads better as 0.0000105
            text = f"{v:.12f}".rstrip("0").rstrip(".")
        return text
    return str(v)
