"""Everything a person sees: Rich progress on a terminal, plain timestamped lines for cron,
and the summary table. The only module that imports Rich. Pure formatters (`format_*`) build
text; the Display prints it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from batchrun.checkpoint import now_iso


@dataclass(frozen=True, slots=True)
class Limit:
    """A model's rate limits in force and where they came from."""

    model: str
    rpm: float | None
    tpm: float | None
    source: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The running figures the progress display shows."""

    done: int
    total: int | None
    elapsed_s: float
    rps: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_unknown: bool
    retries: int
    errors: int
    in_flight: int
    limits: tuple[Limit, ...] = ()
    wait_s: float = 0.0
    simulated: bool = False


def _figures(s: Snapshot) -> list[str]:
    """The running figures shown both on plain lines and under the live bar."""
    cost = f"${s.cost_usd:.4f}" + ("+unknown" if s.cost_unknown else "")
    parts = [f"tokens {s.input_tokens} in / {s.output_tokens} out", f"cost {cost}",
             f"retries {s.retries}", f"errors {s.errors}", f"in flight {s.in_flight}"]
    if s.limits:
        parts.append("limits " + "; ".join(
            f"{lim.model}: {_per_min(lim.rpm)} rpm" + (f" / {_per_min(lim.tpm)} tpm" if lim.tpm else "")
            + f" ({lim.source})" for lim in s.limits))
    if s.wait_s >= 0.05:
        parts.append(f"waited {s.wait_s:.1f}s on limits")
    return parts


def _per_min(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def format_snapshot(s: Snapshot) -> str:
    """One plain progress line (without timestamp)."""
    total = f"/{s.total}" if s.total is not None else ""
    pct = f" ({100.0 * s.done / s.total:.1f}%)" if s.total else ""
    parts = [f"{s.done}{total} done{pct}", f"{s.rps:.1f} req/s", *_figures(s)]
    return ("[SIMULATED] " if s.simulated else "") + ", ".join(parts)


def format_status_line(s: Snapshot) -> str:
    """The line under the live bar (the bar itself shows done, total and rate)."""
    return "  ".join(_figures(s))


class _Progress(Progress):
    """Rich progress with a plain status line under the bar (Rich's documented get_renderables hook)."""

    status = ""

    def get_renderables(self) -> Any:
        yield self.make_tasks_table(self.tasks)
        if self.status:
            yield Text(self.status, overflow="fold")


class Display:
    """Shows progress and messages; mode is 'live' (a TTY), 'plain' (cron) or 'quiet'."""

    def __init__(
        self,
        mode: str | None = None,
        log_file: Path | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        plain_interval_s: float | None = None,
    ) -> None:
        out = out or sys.stdout
        self.console = Console(file=out, highlight=False, soft_wrap=True)
        if not self.console.is_terminal:  # cron mail and log files: don't squeeze the table to 80
            self.console = Console(file=out, highlight=False, soft_wrap=True, width=160)
        self.err = Console(file=err or sys.stderr, highlight=False, soft_wrap=True)
        self.mode = mode or ("live" if self.console.is_terminal else "plain")
        self.interval_s = 0.25 if self.mode == "live" else (plain_interval_s or 10.0)
        self._log: TextIO | None = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
        self._progress: _Progress | None = None
        self._task: Any = None

    def _to_log(self, text: str) -> None:
        if self._log is not None:
            self._log.write(f"{now_iso()} {text}\n")
            self._log.flush()

    def notice(self, text: str) -> None:
        """A line for the person running the job (stderr)."""
        self._to_log(text)
        if self.mode != "quiet":
            self.err.print(text, markup=False)

    def warn(self, text: str) -> None:
        """A warning, shown even with --quiet."""
        self._to_log("warning: " + text)
        self.err.print("warning: " + text, markup=False)

    def start(self, total: int | None, simulated: bool) -> None:
        """Begin showing progress."""
        if self.mode != "live":
            return
        label = "[bold magenta]SIMULATED[/] batchrun" if simulated else "batchrun"
        self._progress = _Progress(
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

    def update(self, s: Snapshot) -> None:
        """Show the latest figures."""
        line = format_snapshot(s)
        if self.mode == "live" and self._progress is not None:
            self._progress.status = format_status_line(s)
            self._progress.update(self._task, completed=s.done, total=s.total, rate=f"{s.rps:.1f} req/s")
        elif self.mode == "plain":
            self.console.print(f"{now_iso()} {line}", markup=False)
        self._to_log(line)

    def stop(self) -> None:
        """Stop the live display, leaving its last state on screen."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(self, summary: dict[str, Any]) -> None:
        """The end-of-run table (stdout), shown in every mode."""
        self.console.print(format_summary_table(summary))
        for line in format_summary_footer(summary):
            self.console.print(line, markup=False)
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


def _money(v: float | None) -> str:
    return "unknown" if v is None else f"${v:.6f}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_summary_table(summary: dict[str, Any], title: str | None = None) -> Table:
    """The per-model summary as a Rich table."""
    sim = summary.get("job", {}).get("simulated")
    t = Table(title=title or ("batchrun summary [SIMULATED]" if sim else "batchrun summary"))
    for col in ("model", "requests", "ok", "failed", "err %", "attempts", "429s", "fallbacks",
                "input tok", "output tok", "cached", "cost", "p50 ms", "p95 ms"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, m in summary.get("models", {}).items():
        lat = m.get("latency_ms") or {}
        t.add_row(
            name, str(m["requests"]), str(m["succeeded"]), str(m["failed"]),
            f"{100 * m.get('error_rate', 0):.1f}", str(m["attempts"]), str(m["rate_limited"]),
            str(m["fallbacks"]), str(m["input_tokens"]), str(m["output_tokens"]),
            str(m["cached_tokens"]), _money(m["cost_usd"]), _ms(lat.get("p50")), _ms(lat.get("p95")),
        )
    return t


def format_summary_footer(summary: dict[str, Any]) -> list[str]:
    """The lines under the table: records, cost, job state."""
    r, job = summary["records"], summary["job"]
    lines = [
        f"records: {r['total']} total, {r['succeeded']} succeeded, {r['failed']} failed, "
        f"{r['invalid']} invalid",
        f"total cost: ${summary['total_cost_usd']:.6f}"
        + (f" (unknown for {', '.join(summary['unpriced_models'])})" if summary["unpriced_models"] else ""),
    ]
    if job.get("output"):
        state = "complete" if job.get("complete") else f"stopped ({job.get('stopped')})"
        lines.append(
            f"job: {state}, {job.get('runs', 1)} run(s), {job.get('elapsed_s', 0):.1f}s, "
            f"output {job['output']}"
        )
    if job.get("rate_limit_wait_s"):
        lines.append(f"waited {job['rate_limit_wait_s']:.1f}s on rate limits")
    if job.get("simulated"):
        lines.append("SIMULATED: no real API was called")
    return lines


def format_status(st: dict[str, Any]) -> list[str]:
    """`batchrun status` as plain lines."""
    lines = [f"job: {st['input']} -> {st['output']}"]
    if st["state"] == "not_started":
        return [*lines, "state: not started (no checkpoint found)"]
    r = st["records"]
    total = "?" if r["total"] is None else r["total"]
    remaining = "?" if r["remaining"] is None else r["remaining"]
    state = st["state"] + (f" (PID {st['active_pid']})" if st.get("active_pid") else "")
    last = st["last_run"]
    lines += [
        f"state: {state}",
        f"records: {r['done']} done of {total} ({r['succeeded']} succeeded, {r['failed']} failed, "
        f"{r['invalid']} invalid), {remaining} remaining",
        f"tokens: {st['input_tokens']} in / {st['output_tokens']} out; cost so far: ${st['cost_usd']:.6f}"
        + (f" (unknown for {', '.join(st['unpriced_models'])})" if st["unpriced_models"] else ""),
        f"runs: {st['runs']}, {st['elapsed_s']:.1f}s in all; last run: {last.get('status', '?')}, "
        f"started {last.get('started', '?')}" + (f", ended {last['ended']}" if last.get("ended") else ""),
        "resumable: " + ("yes: run the same process command again" if st["resumable"] else "no"),
    ]
    if not st["input_unchanged"]:
        lines.append("note: the input file changed since the job started (--fresh to start over)")
    if st.get("problem"):
        lines.append("problem: " + st["problem"])
    return lines


def _tok(v: int) -> str:
    return f"{v:,}"


def format_estimate(data: dict[str, Any]) -> list[Any]:
    """`batchrun estimate` as Rich renderables: per-model table, then the compare table."""
    out: list[Any] = []
    t = Table(title="batchrun estimate (no request sent)")
    for col in ("model", "records", "input tok (est.)", "output tok (max)", "cost min", "cost max",
                "price source"):
        t.add_column(col, justify="left" if col in ("model", "price source") else "right")
    for name, m in data["models"].items():
        t.add_row(name, str(m["records"]), _tok(m["input_tokens"]), _tok(m["max_output_tokens"]),
                  _money(m["cost_min_usd"]), _money(m["cost_max_usd"]), m["price_source"] or "unknown")
    out.append(t)
    lines = data["lines"]
    out.append(f"lines: {lines['valid']} valid, {lines['invalid']} invalid; output at most max_tokens "
               f"per request, or {data['default_max_output_tokens']} where a request sets none")
    for ex in data["invalid_examples"]:
        out.append(f"  invalid: {ex}")
    out.append(f"total: ${data['total_cost_min_usd']:.6f} to ${data['total_cost_max_usd']:.6f}"
               + (f" (unknown for {', '.join(data['unpriced_models'])})" if data["unpriced_models"] else ""))
    if data["compare"]:
        c = Table(title="the same job on other models")
        for col in ("model", "input $/MTok", "output $/MTok", "cost min", "cost max", "price source"):
            c.add_column(col, justify="left" if col in ("model", "price source") else "right")
        for name, m in data["compare"].items():
            c.add_row(name, _rate_cell(m["input_per_mtok"]), _rate_cell(m["output_per_mtok"]),
                      _money(m["cost_min_usd"]), _money(m["cost_max_usd"]), m["price_source"] or "unknown")
        out.append(c)
    return out


def _rate_cell(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def format_report(data: dict[str, Any]) -> list[Any]:
    """`batchrun report`: the summary table, its footer, and the compare table if asked for."""
    r = data["records"]
    out: list[Any] = [
        format_summary_table(data, title=f"report: {data['job']['output']}"),
        f"records: {r['total']} ({r['succeeded']} succeeded, {r['failed']} failed, {r['invalid']} invalid); "
        f"total cost ${data['total_cost_usd']:.6f}"
        + (f" (unknown for {', '.join(data['unpriced_models'])})" if data["unpriced_models"] else ""),
    ]
    if data["foreign_lines"]:
        out.append(f"{data['foreign_lines']} line(s) were not batchrun results and were skipped")
    if data["compare"]:
        out.append(format_report_compare(data))
    return out


def format_report_compare(data: dict[str, Any]) -> Table:
    """What a results file's usage would have cost on other models."""
    c = Table(title="the same usage on other models")
    for col in ("model", "input tok", "output tok", "cached", "cost", "price source"):
        c.add_column(col, justify="left" if col in ("model", "price source") else "right")
    for name, m in data["compare"].items():
        c.add_row(name, _tok(m["input_tokens"]), _tok(m["output_tokens"]), _tok(m["cached_tokens"]),
                  _money(m["cost_usd"]), m["price_source"] or "unknown")
    return c


def format_models(rows: list[dict[str, Any]], with_prices: bool) -> Table:
    """`batchrun models`: the endpoint's models and what is known of their prices."""
    t = Table(title="models")
    cols = ["model", "price"] + (["input $/MTok", "output $/MTok", "cached $/MTok", "context"] if with_prices else [])
    for col in cols:
        t.add_column(col, justify="left" if col in ("model", "price") else "right")
    for r in rows:
        cells = [r["id"], r["price_source"] or "unknown"]
        if with_prices:
            cells += [_rate_cell(r["input_per_mtok"]), _rate_cell(r["output_per_mtok"]),
                      _rate_cell(r["cached_input_per_mtok"]),
                      "-" if r["context_window"] is None else _tok(r["context_window"])]
        t.add_row(*cells)
    return t
