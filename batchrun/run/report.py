"""`batchrun report`: the per-model summary of any results file, and what its usage would cost
on other models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import JobStats, summary
from batchrun.errors import InputError
from batchrun.records import Usage
from batchrun.store.wire import parse_result_line


def read_results(path: Path) -> tuple[JobStats, int]:
    """Count every result line of a file; returns the stats and how many lines were not ours."""
    stats = JobStats()
    foreign = 0
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise InputError(f"cannot read results file {path}: {e.strerror or e}") from None
    with f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                stats.add(parse_result_line(raw))
            except (ValueError, TypeError):
                foreign += 1
    return stats, foreign


def report(path: Path, prices: PriceBook, compare: list[str]) -> dict[str, Any]:
    """The summary JSON of a results file, plus `compare`: its usage priced on other models."""
    stats, foreign = read_results(path)
    out = summary(stats, input_path="", output_path=str(path), total=stats.done, complete=True,
                  simulated=False, runs=0, elapsed_s=0.0, stopped=None)
    out["foreign_lines"] = foreign
    usage = Usage(*(sum(getattr(m, f) for m in stats.models.values())
                    for f in ("input_tokens", "output_tokens", "cached_tokens")))
    out["compare"] = {}
    for name in compare:
        p = prices.price(name)
        out["compare"][name] = {
            **prices.describe(name),
            "cost_usd": round(p.cost(usage), 8) if p else None,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
        }
    return out

