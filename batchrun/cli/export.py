"""`batchrun export`: a results file joined to its input, in input order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from batchrun.cli.app import app
from batchrun.cli.options import Flag, Opt


@app.command("export")
def export_(
    results: Annotated[Path, typer.Argument(help="A results JSONL file.", show_default=False)],
    input: Annotated[Path, Opt("--input", "-i", help="The JSONL input file the results answer.",
                                show_default=False)],
    format: Annotated[str | None, Opt("--format", help="csv or jsonl (default: from -o's suffix, else csv).")] = None,
    output: Annotated[Path | None, Opt("-o", "--output", help="Write here (default: stdout).")] = None,
    parse_json: Annotated[
        bool, Flag("--parse-json", help="Add answer.FIELD columns for answers that are JSON objects.")
    ] = False,
) -> None:
    """One row per input record, in input order: its key and fields, status, model, answer, tokens, cost."""
    from batchrun.errors import ConfigError
    from batchrun.results.export import FORMATS, export

    fmt = format or ("jsonl" if output is not None and output.suffix in (".jsonl", ".json") else "csv")
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be csv or jsonl, not {fmt!r}")
    counts = asyncio.run(export(results, input, output, fmt, parse_json))
    s = counts.by_status
    where = "stdout" if output is None or str(output) == "-" else str(output)
    typer.echo(f"batchrun: exported {counts.rows} row(s) to {where}: {s['ok']} ok, {s['failed']} failed, "
               f"{s['invalid']} invalid, {s['missing']} missing", err=True)
    notes = [
        (counts.index.outside, "result line(s) name no line of the input and were left out"),
        (counts.mismatched, "result(s) carry another key than their input line's (another input file?) "
                            "and were shown as missing"),
        (counts.index.foreign, "line(s) of the results file were not result lines and were skipped"),
        (counts.input_fields_dropped, "more input field name(s) than columns allow were left out"),
        (counts.index.answer_fields_dropped, "more answer field name(s) than columns allow were left out"),
    ]
    for n, text in notes:
        if n:
            typer.echo(f"batchrun: warning: {n} {text}", err=True)
