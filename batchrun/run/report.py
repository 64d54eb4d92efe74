"""`batchrun report`: the per-model summary of any results file, and what its usage would cost
on other models, each line priced at the time its request was sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import JobStats, summary
from batchrun.errors import InputError, reading
from batchrun.store.wire import read_result_lines


def report(path: Path, prices: PriceBook, compare: list[str]) -> dict[str, Any]:
    """The summary JSON of a results file, plus `compare`: its usage priced on other models."""
    stats = JobStats()
    foreign = results = 0
    costs: dict[str, float | None] = dict.fromkeys(compare, 0.0)
    with reading("results file", path), open(path, "rb") as f:
        for line in read_result_lines(f):
            r = line.result
            if r is None:
                foreign += bool(line.raw.strip())
                continue
            results += 1
            stats.add(r)
            for name, so_far in costs.items():
                if so_far is not None and (r.usage.input_tokens or r.usage.output_tokens):
                    c = prices.cost(name, r.usage, r.started_at)
                    costs[name] = None if c is None else so_far + c
    if not results:  # an empty table, exit 0, would pass for a job that did nothing
        if foreign:
            raise InputError(f"{path} is not a batchrun results file: none of its {foreign} lines is a result line")
        raise InputError(f"{path} holds no result lines to report")
    out = summary(stats, input_path="", output_path=str(path), total=stats.done, complete=True,
                  simulated=False, runs=0, elapsed_s=0.0, stopped=None)
    out["foreign_lines"] = foreign
    tokens = {f: sum(getattr(m, f) for m in stats.models.values())
              for f in ("input_tokens", "output_tokens", "cached_tokens")}
    out["compare"] = {
        name: {**prices.describe(name), "cost_usd": None if c is None else round(c, 8), **tokens}
        for name, c in costs.items()
    }
    return out
