"""Tables and lines for the summary, `status`, `estimate`, `report` and `models`. Pure: text in, renderables out."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from batchrun.results.decision import canary_decision
from batchrun.show.batches import format_batch_row, format_queue_row


def _money(v: float | None) -> str:
    return "unknown" if v is None else f"${v:.6f}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


# Narrow terminals get two tables: what came of the requests and what it cost, then how.
_FIRST_COLS = ("requests", "ok", "failed", "err %", "cost", "p50 ms", "p95 ms")
_SECOND_COLS = ("attempts", "429s", "fallbacks", "input tok", "output tok", "cached")
_WIDE_COLS = ("requests", "ok", "failed", "err %", "attempts", "429s", "fallbacks", "input tok",
              "output tok", "cached", "cost", "p50 ms", "p95 ms")


def _model_cells(m: dict[str, Any]) -> dict[str, str]:
    lat = m.get("latency_ms") or {}
    return {
        "requests": str(m["requests"]), "ok": str(m["succeeded"]), "failed": str(m["failed"]),
        "err %": f"{100 * m.get('error_rate', 0):.1f}", "attempts": str(m["attempts"]),
        "429s": str(m["rate_limited"]), "fallbacks": str(m["fallbacks"]),
        "input tok": str(m["input_tokens"]), "output tok": str(m["output_tokens"]),
        "cached": str(m["cached_tokens"]), "cost": _money(m["cost_usd"]),
        "p50 ms": _ms(lat.get("p50")), "p95 ms": _ms(lat.get("p95")),
    }


class SummaryTable:
    """The per-model summary, laid out for the width it is printed at.

    Model names and costs are what a reader needs whole, so instead of letting Rich cut cells
    (`gp…`, `$0.00…`) the table drops to two narrower tables, then to one block per model.
    """

    def __init__(self, rows: dict[str, dict[str, str]], title: str) -> None:
        self.rows = rows
        self.title = title

    def table(self, cols: tuple[str, ...], title: str | None, narrow: bool = False) -> Table:
        """One table of the given columns, every cell whole (no wrapping, no ellipsis); a narrow
        one has no frame and two spaces between columns."""
        if narrow:
            t = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), show_edge=False)
        else:
            t = Table(title=title)
        t.add_column("model", no_wrap=True)
        for col in cols:
            t.add_column(col, justify="right", no_wrap=True)
        for name, cells in self.rows.items():
            t.add_row(name, *(cells[c] for c in cols))
        return t

    def blocks(self, width: int) -> list[Any]:
        """One block per model: its name on a line of its own, then `label value` pairs wrapped
        between pairs, never inside one."""
        out: list[Any] = [Text(self.title, style="italic", justify="center")]
        for name, cells in self.rows.items():
            out.append(Text(name, style="bold", overflow="fold"))
            line = " "
            for label, value in cells.items():
                item = f"err {value}%" if label == "err %" else f"{label} {value}"
                if len(line) > 1 and len(line) + 2 + len(item) > width:
                    out.append(Text(line, overflow="fold"))
                    line = " "
                line += ("  " if len(line) > 1 else " ") + item
            out.append(Text(line, overflow="fold"))
        return out

    def width(self, console: Console, options: ConsoleOptions, cols: tuple[str, ...], narrow: bool = False) -> int:
        """The width Rich lays `table(cols, narrow)` out at: each column's widest cell and its
        padding, and the frame. Counted from the cells' lengths: Rich's own measuring lays the
        table out to measure it (about 10 ms a table, three tables at 80 columns)."""
        columns = [["model", *self.rows], *([col, *(cells[col] for cells in self.rows.values())] for col in cols)]
        widest = sum(max(console.render_str(c, markup=options.markup, highlight=False).cell_len for c in column)
                     for column in columns)
        padding, frame = (1, len(columns) - 1) if narrow else (2, len(columns) + 1)
        return widest + padding * len(columns) + frame

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self.width(console, options, _WIDE_COLS) <= width:
            yield self.table(_WIDE_COLS, self.title)
            return
        if all(self.width(console, options, cols, narrow=True) <= width for cols in (_FIRST_COLS, _SECOND_COLS)):
            yield self.table(_FIRST_COLS, self.title, narrow=True)
            yield Text("")
            yield self.table(_SECOND_COLS, None, narrow=True)
            return
        yield from self.blocks(width)


def format_summary_table(summary: dict[str, Any], title: str | None = None) -> SummaryTable:
    """The per-model summary as a Rich renderable that fits the console's width."""
    sim = summary.get("job", {}).get("simulated")
    title = title or ("batchrun summary [SIMULATED]" if sim else "batchrun summary")
    return SummaryTable({name: _model_cells(m) for name, m in summary.get("models", {}).items()}, title)


def format_summary_footer(summary: dict[str, Any]) -> list[str]:
    """The lines under the table: records, cost, job state."""
    r, job = summary["records"], summary["job"]
    lines = [
        f"records: {r['total']} total, {r['succeeded']} succeeded, {r['failed']} failed, "
        f"{r['invalid']} invalid",
        f"total cost: ${summary['total_cost_usd']:.6f}" + cost_split(summary)
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


def cost_split(summary: dict[str, Any]) -> str:
    """What the total is made of, where a canary or a shadow spent part of it: '' otherwise."""
    split = summary.get("cost_split_usd") or {}
    if not (summary.get("canary") or summary.get("shadow") or split.get("canary") or split.get("shadow")):
        return ""
    return (f" = main answers ${split.get('main', 0.0):.6f} + canary ${split.get('canary', 0.0):.6f}"
            f" + shadow ${split.get('shadow', 0.0):.6f}")


def format_status(st: dict[str, Any]) -> list[str]:
    """`batchrun status` as plain lines."""
    lines = [f"job: {st['input']} -> {st['output']}"]
    if st.get("part"):
        lines[0] += " (part {} of {})".format(*st["part"].split("/"))
    if st["state"] == "not_started":
        what = "part {} of {} ".format(*st["part"].split("/")) if st.get("part") else ""
        return [*lines, f"state: {what}not started (no checkpoint found beside {st['output']})"]
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
        + cost_split(st) + (f" (unknown for {', '.join(st['unpriced_models'])})" if st["unpriced_models"] else ""),
        f"runs: {st['runs']}, {st['elapsed_s']:.1f}s in all; last run: {last.get('status', '?')}, "
        f"started {last.get('started', '?')}" + (f", ended {last['ended']}" if last.get("ended") else ""),
        f"rate limits: {st['rate_limited']} x 429, {st['rate_limit_wait_s']:.1f}s waited",
        "resumable: " + ("yes" if st["resumable"] else "no"),
    ]
    for b in st.get("batches") or ():
        lines.append(format_batch_row(b))
    lines += [format_queue_row(q) for q in st.get("batch_queues") or ()]
    if st.get("next"):
        lines.append("next: " + st["next"])
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
                "batch min", "batch max", "price source"):
        t.add_column(col, justify="left" if col in ("model", "price source") else "right")
    for name, m in data["models"].items():
        t.add_row(name, str(m["records"]), _tok(m["input_tokens"]), _tok(m["max_output_tokens"]),
                  _money(m["cost_min_usd"]), _money(m["cost_max_usd"]), _money(m.get("batch_cost_min_usd")),
                  _money(m.get("batch_cost_max_usd")), m["price_source"] or "unknown")
    out.append(t)
    lines = data["lines"]
    out.append(f"lines: {lines['valid']} valid, {lines['invalid']} invalid; output at most max_tokens "
               f"per request, or {data['default_max_output_tokens']} where a request sets none")
    for ex in data["invalid_examples"]:
        out.append(f"  invalid: {ex}")
    more = lines["invalid"] - len(data["invalid_examples"])
    if more > 0:
        out.append(f"  ... and {more} more invalid line(s): `batchrun process` writes each as an error line")
    for name, m in {**data["models"], **data["compare"]}.items():
        if m.get("price_period"):
            out.append(f"the price of {name} depends on the hour: estimated at the rate in force now "
                       f"({m['price_period']}); each request is billed at the rate of the hour it is sent")
    out.append(f"total: ${data['total_cost_min_usd']:.6f} to ${data['total_cost_max_usd']:.6f}"
               + (f" (unknown for {', '.join(data['unpriced_models'])})" if data["unpriced_models"] else ""))
    if "total_batch_cost_max_usd" in data:
        unknown = data["batch_unpriced_models"]
        out.append(f"with --batch-api (the provider's batch price): ${data['total_batch_cost_min_usd']:.6f} to "
                   f"${data['total_batch_cost_max_usd']:.6f}"
                   + (f" (no batch price known for {', '.join(unknown)})" if unknown else ""))
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
        f"total cost ${data['total_cost_usd']:.6f}" + cost_split(data)
        + (f" (unknown for {', '.join(data['unpriced_models'])})" if data["unpriced_models"] else ""),
    ]
    migration = data.get("migration") or {}
    if migration.get("canary"):
        out.append(canary_decision(migration["canary"]))
    if s := migration.get("shadow"):
        out.append(f"shadow {s['model']}: {s['agreed']} of {s['compared']} compared answers agreed")
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

