"""The Display: Rich progress on a terminal, plain timestamped lines for cron, messages and the
log file. `show/` is the only package that imports Rich; the formatters in `tables` and
`progress` build text, the Display prints it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from batchrun.clock import now_iso
from batchrun.show.progress import ProgressFigures, format_progress_line, status_parts
from batchrun.show.routing import format_routing
from batchrun.show.tables import format_summary_footer, format_summary_table


class DisplayMode(StrEnum):
    """How progress is shown."""

    LIVE = "live"  # a terminal: the Rich bar with figures under it
    PLAIN = "plain"  # cron, a pipe: timestamped lines
    QUIET = "quiet"  # warnings and the summary only


class Display:
    """Shows progress and messages in one of the DisplayModes."""

    def __init__(
        self,
        mode: DisplayMode | None = None,
        log_file: Path | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        plain_interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        out = out or sys.stdout
        # emoji=False: text is printed as it is (a model or a path with `:name:` in it stays so),
        # and Rich's table of emoji codes (~15 ms to load and apply) is never loaded
        self.console = Console(file=out, highlight=False, soft_wrap=True, emoji=False)
        if not self.console.is_terminal:  # cron mail and log files: don't squeeze the table to 80
            self.console = Console(file=out, highlight=False, soft_wrap=True, width=160, emoji=False)
        self.err = Console(file=err or sys.stderr, highlight=False, soft_wrap=True, emoji=False)
        self.mode = mode or (DisplayMode.LIVE if self.console.is_terminal else DisplayMode.PLAIN)
        self.interval_s = 0.25 if self.mode == DisplayMode.LIVE else (plain_interval_s or 10.0)
        self._log: TextIO | None = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
        self._progress: Any = None  # Rich's Progress, loaded only when a bar is shown
        self._task: Any = None
        # plain lines and the log file get a line per interval, whoever calls update (a batch
        # job's polls, a deadline's looks) and however often; the last figures come at stop
        self._every_s, self._clock = plain_interval_s or 10.0, clock
        self._line_at: float | None = None
        self._pending: str | None = None
        self._written: str | None = None

    @property
    def shows_progress(self) -> bool:
        """Whether progress goes anywhere: the screen, or the log file even with --quiet."""
        return self.mode != DisplayMode.QUIET or self._log is not None

    def _to_log(self, text: str) -> None:
        if self._log is not None:
            self._log.write(f"{now_iso()} {text}\n")
            self._log.flush()

    def notice(self, text: str) -> None:
        """A line for the person running the job (stderr)."""
        self._to_log(text)
        if self.mode != DisplayMode.QUIET:
            self._print_err(text)

    def hint(self, text: str) -> None:
        """The next step after a stop, shown even with --quiet: a cron job's log keeps how to go on."""
        self._to_log(text)
        self._print_err(text)

    def warn(self, text: str) -> None:
        """A warning, shown even with --quiet."""
        self._to_log("warning: " + text)
        self._print_err("warning: " + text)

    def _print_err(self, text: str) -> None:
        """A message; while the live bar is on a terminal, printed above it through the bar's own
        console (printed past it, the next refresh would draw over the message's end)."""
        if self._progress is not None and self.err.is_terminal:
            self._progress.console.print(text, markup=False)
        else:
            self.err.print(text, markup=False)

    def error(self, text: str) -> None:
        """A stop the user must act on (a wrong key, the budget, a provider down), shown even with --quiet."""
        self._to_log("error: " + text)
        self._print_err("error: " + text)

    def start(self, total: int | None, simulated: bool) -> None:
        """Begin showing progress."""
        if self.mode != DisplayMode.LIVE:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        from batchrun.show.live import StatusProgress

        label = "[bold magenta]SIMULATED[/] batchrun" if simulated else "batchrun"
        self._progress = StatusProgress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[rate]}"),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task("records", total=total, rate="")
        self._progress.start()

    def update(self, s: ProgressFigures) -> None:
        """Show the latest figures."""
        line = format_progress_line(s)
        if self.mode == DisplayMode.LIVE and self._progress is not None:
            self._progress.status = status_parts(s)
            self._progress.update(self._task, completed=s.done, total=s.total, rate=f"{s.rps:.1f} req/s")
        now = self._clock()
        if self._line_at is None or now - self._line_at >= 0.95 * self._every_s:  # a tick may wake a hair early
            self._write_line(line, now)
        else:
            self._pending = line

    def _write_line(self, line: str, now: float) -> None:
        """A timestamped progress line: printed in plain mode, and into the log file."""
        if self.mode == DisplayMode.PLAIN:
            self.console.print(f"{now_iso()} {line}", markup=False)
        self._to_log(line)
        self._line_at, self._written, self._pending = now, line, None

    def stop(self) -> None:
        """Stop the live display, leaving its last state on screen; the last figures, if not yet written."""
        if self._pending is not None and self._pending != self._written:
            self._write_line(self._pending, self._clock())
        self._pending = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(self, summary: dict[str, Any]) -> None:
        """The end-of-run table (stdout), shown in every mode."""
        self.console.print(format_summary_table(summary))
        for line in format_summary_footer(summary):
            self.console.print(line, markup=False)
        for part in format_routing(summary):
            self.console.print(part, markup=False)
        self._to_log("summary " + "; ".join(format_summary_footer(summary)))

    def lines(self, lines: list[Any]) -> None:
        """Plain lines or Rich renderables on stdout."""
        for line in lines:
            self.console.print(line, markup=False)

    def close(self) -> None:
        """Release the log file."""
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

