"""The end-of-run summary reads on the terminal it is printed to: model names and costs whole."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.measure import Measurement

from batchrun.show.tables import (
    _FIRST_COLS,
    _SECOND_COLS,
    _WIDE_COLS,
    SummaryTable,
    _model_cells,
    format_report,
    format_summary_table,
)


def _model(cost: float | None, requests: int = 300) -> dict[str, Any]:
    return {"requests": requests, "succeeded": requests - 3, "failed": 3, "error_rate": 3 / requests,
            "attempts": requests + 5, "rate_limited": 12, "fallbacks": 1, "input_tokens": 451234,
            "output_tokens": 98765, "cached_tokens": 1024, "cost_usd": cost,
            "latency_ms": {"p50": 210.0, "p95": 640.0}}


def _render(renderable: Any, width: int, markup: bool = True) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable, markup=markup)
    return console.export_text()


NAMES = {
    "short": ("gpt-4o-mini", "deepseek-chat"),
    "long": ("gpt-4o-mini-2024-07-18", "legacy/deepseek-reasoner"),
    "very long": ("openrouter/anthropic/claude-3.7-sonnet:thinking", "deepseek-chat"),
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("names", list(NAMES))
def test_model_names_and_costs_are_whole_at_80_and_120_columns(width: int, names: str) -> None:
    first, second = NAMES[names]
    summary = {"job": {"simulated": True},
               "models": {first: _model(0.01234567), second: _model(None, 1000)}}
    text = _render(format_summary_table(summary), width)
    assert first in text and second in text
    assert "$0.012346" in text and "unknown" in text
    assert "…" not in text  # Rich's sign of a cut cell
    assert max(len(line) for line in text.splitlines()) <= width
    for figure in ("451234", "98765", "1024", "640", "210", "1000", "305"):
        assert figure in text


def test_a_wide_terminal_gets_one_table_and_a_narrow_one_a_block_per_model() -> None:
    summary = {"job": {}, "models": {"gpt-4o-mini": _model(0.5), "deepseek-chat": _model(0.25)}}
    wide = _render(format_summary_table(summary), 200)
    assert sum("gpt-4o-mini" in line for line in wide.splitlines()) == 1
    assert "attempts" in wide and "p95 ms" in wide
    split = _render(format_summary_table(summary), 80)  # two tables, each model once in each
    assert sum("gpt-4o-mini" in line for line in split.splitlines()) == 2
    narrow = _render(format_summary_table(summary), 40)
    lines = narrow.splitlines()
    assert "gpt-4o-mini" in [ln.strip() for ln in lines]  # a line of its own
    assert "$0.500000" in narrow and "$0.250000" in narrow
    assert max(len(line) for line in lines) <= 40


def test_report_table_fits_80_columns() -> None:
    data = {"job": {"output": "history.results.jsonl"}, "records": {"total": 1300, "succeeded": 1291,
            "failed": 6, "invalid": 3}, "models": {"gpt-4.1-mini-2025-04-14": _model(1.5, 1000),
            "deepseek-chat": _model(0.75)}, "total_cost_usd": 2.25, "unpriced_models": [],
            "foreign_lines": 0, "compare": {}}
    text = "".join(_render(r, 80) for r in format_report(data))
    assert "gpt-4.1-mini-2025-04-14" in text and "$1.500000" in text and "$0.750000" in text
    assert "…" not in text


class _MeasuredByRich(SummaryTable):
    """The layout as chosen before: Rich measuring each candidate table by laying it out."""

    def width(self, console: Any, options: Any, cols: tuple[str, ...], narrow: bool = False) -> int:
        return Measurement.get(console, options.update_width(1 << 16), self.table(cols, None, narrow)).maximum


ODD_NAMES = ("通义千问-max", "[bold]gpt-4o[/bold]", "model:smile:", "openrouter/anthropic/claude-3.7-sonnet:thinking")


@pytest.mark.parametrize("names", [*NAMES.values(), ODD_NAMES[:2], ODD_NAMES[2:]])
@pytest.mark.parametrize("markup", [True, False])
def test_the_layout_counted_from_cell_lengths_prints_what_rich_measuring_printed(
        names: tuple[str, ...], markup: bool) -> None:
    rows = {name: _model_cells(_model(0.0123 * i, 10 ** (i + 2))) for i, name in enumerate(names)}
    counted, measured = SummaryTable(rows, "batchrun summary"), _MeasuredByRich(rows, "batchrun summary")
    console = Console(width=500, file=io.StringIO())
    edges = set()
    for cols, narrow in ((_WIDE_COLS, False), (_FIRST_COLS, True), (_SECOND_COLS, True)):
        w = measured.width(console, console.options.update(markup=markup), cols, narrow)
        edges |= {w - 1, w}  # the widths where a layout starts to fit
    for width in sorted({80, 120, 200} | edges):
        assert _render(counted, width, markup) == _render(measured, width, markup), width
