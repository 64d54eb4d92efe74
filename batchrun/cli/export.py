"""`batchrun export`: a results file joined to its input, in input order."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from batchrun.cli.app import app
from batchrun.cli.options import Flag, Opt

T = TypeVar("T")


@app.command("export")
def export_(
    results: Annotated[list[Path], typer.Argument(
        help="A results JSONL file, or several (the parts of one job).", show_default=False)],
    input: Annotated[Path, Opt("--input", "-i", help="The JSONL input file the results answer.",
                                show_default=False)],
    format: Annotated[str | None, Opt("--format", help="csv or jsonl (default: from -o's suffix, else csv).")] = None,
    output: Annotated[Path | None, Opt("-o", "--output", help="Write here (default: stdout).")] = None,
    parse_json: Annotated[
        bool, Flag("--parse-json", help="Add answer.FIELD columns for answers that are JSON objects.")
    ] = False,
) -> None:
    """One row per input record, in input order: its key and fields, status, model, answer, tokens, cost."""
    from batchrun.commands.export import export

    to_file = output is not None and str(output) != "-"
    fmt = _format(format, output if to_file else None)
    counts = _interruptible(lambda: _run(export(results, input, output, fmt, parse_json)),
                            output if to_file else None)
    s = counts.by_status
    where = str(output) if to_file else "stdout"
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


def _format(given: str | None, output: Path | None) -> str:
    """--format, else -o's suffix; a suffix that names neither format is refused rather than
    guessed (a.xml written as CSV would surprise), and a name without one is CSV."""
    from batchrun.commands.export import FORMATS
    from batchrun.errors import ConfigError
    from batchrun.results.target import check_target

    if given is not None and given not in FORMATS:
        raise ConfigError(f"--format must be csv or jsonl, not {given!r}")
    if output is None:
        return given or "csv"
    check_target(output, "-o")
    if given is not None:
        return given
    suffix = output.suffix.lower()
    if suffix in ("", ".csv"):
        return "csv"
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    raise ConfigError(f"cannot tell the format from -o {output}: name it .csv or .jsonl, or pass --format")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, quiet about a file read that finishes in its thread after an interrupt has
    cancelled its waiter (CPython 3.11 reports it as an InvalidStateError in a callback: noise,
    the export is stopping and its temporary file goes)."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), asyncio.InvalidStateError):
            loop.default_exception_handler(context)

    terminated = False

    async def main() -> T:
        # SIGTERM cancels the export's task from inside the loop, as asyncio.Runner does for
        # Ctrl-C: raised from a signal handler at any bytecode, it could land inside the loop's
        # or a thread pool's machinery and leave the process hanging on its way out
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        outside = signal.getsignal(signal.SIGTERM)

        def on_term() -> None:
            nonlocal terminated
            terminated = True
            assert task is not None
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, on_term)
        try:
            return await work
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, outside)  # the handler the cleanup outside the loop runs under

    with asyncio.Runner() as runner:
        runner.get_loop().set_exception_handler(handler)
        try:
            return runner.run(main())
        except asyncio.CancelledError:
            if terminated:
                raise _Terminated from None
            raise


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the export is, so the temporary file is removed on the way out; a
    KeyboardInterrupt so the event loop lets it through as it does Ctrl-C."""


def _interruptible(work: Callable[[], T], output: Path | None) -> T:
    """Run the export; SIGINT or SIGTERM stop it with the target left as it was (exit 130/143)."""
    from batchrun.errors import ExitCode

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return work()
    except KeyboardInterrupt as e:
        code = ExitCode.TERMINATED if isinstance(e, _Terminated) else ExitCode.INTERRUPTED
        where = f"nothing was written to {output}" if output is not None else "the rows on stdout are incomplete"
        typer.echo(f"batchrun: export interrupted; {where}", err=True)
        raise SystemExit(code) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
