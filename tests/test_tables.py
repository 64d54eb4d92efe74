"""The end-of-run summary reads on the terminal it is printed to: model names and costs whole."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from batchrun.show.tables import format_report, format_summary_table


def _model(cost: float | None, requests: int = 300) -> dict[str, Any]:
    return {"requests": requests, "succeeded": requests - 3, "failed": 3, "error_rate": 3 / requests,
            "attempts": requests + 5, "rate_limited": 12, "fallbacks": 1, "input_tokens": 451234,
            "output_tokens": 98765, "cached_tokens": 1024, "cost_usd": cost,
            "latency_ms": {"p50": 210.0, "p95": 640.0}}


def _render(renderable: Any, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
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
