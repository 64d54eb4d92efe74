"""`batchrun export`: results joined to their input records, one row per input line, in input
order, as CSV or JSONL. Three streaming passes: the input (its fields, for one CSV header), the
results (an index by line number), then the input again, each line joined to its result."""

from __future__ import annotations

import csv
import sys
from array import array
from collections.abc import Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from batchrun.errors import ConfigError, InputError
from batchrun.input.keys import BadKey, record_key
from batchrun.input.lines import DEFAULT_MAX_LINE_BYTES, line_batches
from batchrun.records import Result
from batchrun.results.answer import answer_object, answer_text, cell
from batchrun.results.index import IndexCounts, ResultIndex, key_hash
from batchrun.results.target import replacing
from batchrun.store.files import job_files, refuse_job_file

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


@dataclass(frozen=True, slots=True)
class InputScan:
    """The first reading of the input: what the header and the key check need."""

    last: int  # the last non-blank line's number; 0: the input holds no record
    fields: dict[str, None]  # top-level scalar field names, first seen first
    dropped: int  # more names than MAX_INPUT_FIELDS
    keys: array[int]  # each line's key hash (key_hash), 0 for a blank line


async def input_fields(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> InputScan:
    """Read the input once for its field names and each line's key."""
    last, fields, dropped = 0, dict[str, None](), 0
    keys = array("q")
    async with aclosing(line_batches(path, max_line_bytes)) as batches:
        async for batch in batches:
            last = batch[-1][0]
            keys.frombytes(bytes(8 * (last + 1 - len(keys))))
            for n, data in batch:
                obj = _object(data)
                keys[n] = key_hash(_key(n, obj))
                for name, value in obj.items() if obj else ():
                    if name not in fields and _scalar(value):
                        if len(fields) < MAX_INPUT_FIELDS:
                            fields[name] = None
                        else:
                            dropped += 1
    return InputScan(last, fields, dropped, keys)


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


def input_columns(fields: dict[str, None], answer_fields: dict[str, None]) -> dict[str, str]:
    """Each input field's column: its own name unless a generated column (or an earlier input
    field's column) has it, else `input.NAME`, else `input.NAME.2`, `.3`... so every name in
    the header is unique and no input value is dropped (an export of an export clashes on all)."""
    taken = {*_OURS, *(f"answer.{f}" for f in answer_fields)}
    out: dict[str, str] = {}
    for name in fields:
        col, i = name, 1
        while col in taken:
            i += 1
            col = f"input.{name}" if i == 2 else f"input.{name}.{i - 1}"
        taken.add(col)
        out[name] = col
    return out


def columns(inputs: dict[str, str], answer_fields: dict[str, None]) -> list[str]:
    """The header: key and line, the input's fields, then what became of the record."""
    return [*_OURS[:2], *inputs.values(), *_OURS[2:], *(f"answer.{f}" for f in answer_fields)]


def status_of(r: Result | None) -> str:
    """ok / failed / invalid / missing."""
    if r is None:
        return "missing"
    return "invalid" if r.invalid else "ok" if r.ok else "failed"


def make_row(n: int, obj: dict[str, Any] | None, fields: dict[str, str], found: tuple[Result, Any] | None,
             answer_fields: dict[str, None]) -> dict[str, Any]:
    """One row: an input line (obj None when it is not a JSON object) and its result, if any."""
    r, body = found if found else (None, None)
    # a bad line's result is keyed line-N even where the line names a key (a duplicate)
    row: dict[str, Any] = {"key": r.key if r else _key(n, obj), "line": n}
    for name, col in fields.items():
        value = obj.get(name) if obj else None
        row[col] = value if _scalar(value) else None
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


MISMATCH_FEW = 3  # results keyed unlike their input line tolerated before refusing: an edited line


async def export(
    results: Path | Sequence[Path], input: Path, output: Path | None, fmt: str = "csv", parse_json: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ExportCounts:
    """Write one row per non-blank input line, in input order, to output (None: stdout).
    Several results files (a job's parts) are joined as one."""
    paths = [results] if isinstance(results, Path) else list(results)
    if output is not None and any(_same(output, p) for p in (*paths, input)):
        raise ConfigError(f"-o {output} would overwrite the file it is made from")
    if output is not None:
        for p in paths:
            refuse_job_file("-o", output, job_files(input, p))
    scan = await input_fields(input, max_line_bytes)
    index = ResultIndex(paths, scan.last)
    found_fields = index.build(answer_fields=parse_json, keys=scan.keys)
    if any(_same(p, input) for p in paths):
        raise InputError(f"{input} is the results file: pass the input file it answers to --input")
    _check_answers(found_fields, index.path, input)
    answer_fields = found_fields.answer_fields
    inputs = input_columns(scan.fields, answer_fields)
    by_status = dict.fromkeys(("ok", "failed", "invalid", "missing"), 0)
    rows = mismatched = 0
    with index, _writing(output, fmt) as out:
        write = _row_writer(out, fmt, columns(inputs, answer_fields))
        async with aclosing(line_batches(input, max_line_bytes)) as batches:
            async for batch in batches:
                for n, data in batch:
                    obj = _object(data)
                    found = index.get(n)
                    if found is not None and not _matches(_key(n, obj), n, found[0]):
                        mismatched += 1
                        found = None
                    row = make_row(n, obj, inputs, found, answer_fields)
                    by_status[row["status"]] += 1
                    rows += 1
                    write(row)
    return ExportCounts(rows, by_status, mismatched, found_fields, scan.dropped)


def _check_answers(c: IndexCounts, results: Path, input: Path) -> None:
    """Refuse, before anything is written, a results file made from another input (or from
    this one before a line was added or deleted): its keys stop matching the lines."""
    if c.results and (c.mismatched > MISMATCH_FEW or c.mismatched == c.results) \
            and c.mismatched > c.results // 100:
        raise InputError(f"{results} does not answer {input} (it answers another input, or this one before a line "
                         f"was added or deleted): {c.mismatched} of its {c.results} result lines carry another "
                         "key than their input line's")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


@contextmanager
def _writing(output: Path | None, fmt: str) -> Iterator[IO[str]]:
    """The stream rows go to: stdout, or `output` replaced whole once written (target.replacing)."""
    if output is None or str(output) == "-":
        yield sys.stdout
        return
    # Excel reads a CSV as UTF-8 only when it starts with a byte-order mark
    with replacing(output, "-o", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as f:
        yield f


def _row_writer(out: IO[str], fmt: str, header: list[str]) -> Any:
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
