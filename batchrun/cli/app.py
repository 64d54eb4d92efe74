"""The Typer app: the one place errors become a sentence and an exit code."""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from batchrun import __version__
from batchrun.cli.options import Flag, Opt
from batchrun.errors import BatchrunError, ExitCode

__all__ = ["Opt", "app", "main"]


# Each command's module under batchrun.cli, in the order `--help` lists them. A run imports only
# the module of the command it names (with its backends): typer builds, and Python imports, one
# command instead of nine at every start. Help, or a name that is none of these, loads them all.
COMMANDS = {"batches": "batches", "export": "export", "status": "inspect", "estimate": "inspect",
            "report": "inspect", "models": "inspect", "process": "process", "providers": "providers",
            "mock-server": "simulate"}


class _Group(TyperGroup):
    """Loads a command's module when the command is named; turns every BatchrunError into one
    sentence on stderr and its exit code."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:  # an unknown name loads all: "Did you mean ...?" as before
            self._load([COMMANDS[cmd_name]] if cmd_name in COMMANDS else COMMANDS.values())
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        self._load(COMMANDS.values())
        return [name for name in COMMANDS if name in self.commands]

    def _load(self, modules: Iterable[str]) -> None:
        """Import the modules (each registers its commands on `app`); add the new commands."""
        for module in dict.fromkeys(modules):
            importlib.import_module(f"batchrun.cli.{module}")
        for info in app.registered_commands:
            name = info.name or typer.main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]
            if name not in self.commands:
                self.commands[name] = typer.main.get_command_from_info(
                    info, pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode)

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored click) Context
        try:
            return super().invoke(ctx)
        except BatchrunError as e:
            typer.echo(f"batchrun: {e.message}", err=True)
            raise SystemExit(e.exit_code) from None
        except KeyboardInterrupt:  # before the job's own handlers were in place: nothing was sent
            typer.echo("batchrun: interrupted before any request was sent", err=True)
            raise SystemExit(ExitCode.INTERRUPTED) from None


app = typer.Typer(
    cls=_Group,
    help="Push a JSONL file of LLM work through an OpenAI-compatible API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

def _version(show: bool) -> None:
    if show:
        typer.echo(f"batchrun {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, Flag("--version", help="Print the version and exit.", is_eager=True,
                                  callback=_version)] = False,
) -> None:
    """Push a JSONL file of LLM work through an OpenAI-compatible API."""


def _early_signal(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP before the job's own handlers are in place: nothing was sent yet."""
    hangup = signum == signal.SIGHUP
    typer.echo(f"batchrun: {'hung up' if hangup else 'terminated'} before any request was sent", err=True)
    raise SystemExit(ExitCode.HANGUP if hangup else ExitCode.TERMINATED)


def _show(data: Any, as_json: bool, render: Callable[[Any], list[Any]]) -> None:
    """Print a command's data as JSON, or rendered for a person."""
    if as_json:
        import orjson

        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        from batchrun.show.console import Display

        Display().lines(render(data))


def _names(text: str | None) -> list[str]:
    return [m.strip() for m in (text or "").split(",") if m.strip()]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as e:
        _end(e.code)
        raise


def _end(code: object) -> None:
    """After the command: end the process without the interpreter's teardown, which frees one by
    one every object the ~500 imported modules built (~35 ms of a one-record job's CPU; its
    garbage collections alone ~20 ms). The atexit handlers run and stdout and stderr are flushed
    first; every file a command writes is closed by then. With another thread still running, a
    message as the exit status or a stream that cannot be flushed, Python ends as usual, with its
    garbage collector's walk of those objects skipped (frozen)."""
    gc.freeze()
    code = 0 if code is None else code
    if not isinstance(code, int) or not 0 <= code <= 255 or threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)

