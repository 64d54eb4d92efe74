"""`batchrun estimate`: what a job will cost, before anything is sent. No network.

Input tokens are batchrun's offline estimate (tokens.py); output is the worst case: each
request's max_tokens, or the stated default. So the range per model runs from the input alone
(the least the job can cost) to input plus every output at its cap (the most).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.errors import ConfigError
from batchrun.input.lines import line_batches
from batchrun.input.shapes import LineParser, check_template_file
from batchrun.input.sniff import sniff_input
from batchrun.records import Record, Usage


@dataclass(slots=True)
class ModelEstimate:
    """The records of one model and their token totals."""

    records: int = 0
    input_tokens: int = 0
    max_output_tokens: int = 0


@dataclass(slots=True)
class Estimate:
    """The whole file."""

    valid: int = 0
    invalid: int = 0
    invalid_examples: list[str] = field(default_factory=list)
    models: dict[str, ModelEstimate] = field(default_factory=dict)
    streams_disabled: int = 0  # records that ask to stream: they are sent with stream false

    @property
    def input_tokens(self) -> int:
        """Estimated input tokens over all records."""
        return sum(m.input_tokens for m in self.models.values())

    @property
    def max_output_tokens(self) -> int:
        """Worst-case output tokens over all records."""
        return sum(m.max_output_tokens for m in self.models.values())


async def estimate_file(path: Path, parser: LineParser, route: Callable[[Record], str] | None = None) -> Estimate:
    """Read the file once and count per model (the model `route` picks, where [route] is set);
    ConfigError for a template that cannot shape the records, or when no record can have a model."""
    sniff_input(path)
    await check_template_file(parser.shaping.template, path, parser.max_line_bytes)
    est = Estimate()
    async for batch in line_batches(path, parser.max_line_bytes):
        for n, data in batch:
            item = parser.parse_line(n, data)
            if isinstance(item, Record):
                est.valid += 1
                name = route(item) if route is not None else item.model
                m = est.models.get(name) or est.models.setdefault(name, ModelEstimate())
                m.records += 1
                m.input_tokens += item.est_input_tokens
                m.max_output_tokens += item.max_output_tokens
            else:
                est.invalid += 1
                if len(est.invalid_examples) < 5 and item.error_message:
                    est.invalid_examples.append(item.error_message)
    if est.valid == 0 and parser.models_missing:  # not a file of bad lines: a missing flag
        raise ConfigError("name a model: records without one need --model")
    est.streams_disabled = parser.streams_disabled
    return est


def cost_range(prices: PriceBook, model: str, input_tokens: int, max_output: int) -> dict[str, Any]:
    """Least and most a model can cost for these tokens, and where its price comes from."""
    p = prices.price(model)
    least = p.cost(Usage(input_tokens, 0)) if p else None
    most = p.cost(Usage(input_tokens, max_output)) if p else None
    return {
        **prices.describe(model),
        "cost_min_usd": None if least is None or most is None else round(least, 8),
        "cost_max_usd": None if most is None else round(most, 8),
    }


def batch_cost_range(prices: PriceBook, model: str, input_tokens: int, max_output: int) -> dict[str, Any]:
    """The same range at the model's Batch API price (`process --batch-api`), None where unknown."""
    p = prices.batch_price(model)
    least = p.cost(Usage(input_tokens, 0)) if p else None
    most = p.cost(Usage(input_tokens, max_output)) if p else None
    return {
        "batch_price_source": p.source if p else None,
        "batch_cost_min_usd": None if least is None or most is None else round(least, 8),
        "batch_cost_max_usd": None if most is None else round(most, 8),
    }


def estimate_report(est: Estimate, prices: PriceBook, compare: list[str], default_output: int) -> dict[str, Any]:
    """The estimate as JSON-ready data; `compare` prices the whole job on each named model."""
    models = {
        name: {"records": m.records, "input_tokens": m.input_tokens, "max_output_tokens": m.max_output_tokens,
               **cost_range(prices, name, m.input_tokens, m.max_output_tokens),
               **batch_cost_range(prices, name, m.input_tokens, m.max_output_tokens)}
        for name, m in sorted(est.models.items())
    }
    priced = [m for m in models.values() if m["cost_max_usd"] is not None]
    batch_priced = [m for m in models.values() if m["batch_cost_max_usd"] is not None]
    return {
        "lines": {"valid": est.valid, "invalid": est.invalid},
        "invalid_examples": est.invalid_examples,
        "streams_disabled": est.streams_disabled,
        "default_max_output_tokens": default_output,
        "models": models,
        "total_cost_min_usd": round(sum(m["cost_min_usd"] for m in priced), 8),
        "total_cost_max_usd": round(sum(m["cost_max_usd"] for m in priced), 8),
        "unpriced_models": sorted(n for n, m in models.items() if m["cost_max_usd"] is None),
        "total_batch_cost_min_usd": round(sum(m["batch_cost_min_usd"] for m in batch_priced), 8),
        "total_batch_cost_max_usd": round(sum(m["batch_cost_max_usd"] for m in batch_priced), 8),
        "batch_unpriced_models": sorted(n for n, m in models.items() if m["batch_cost_max_usd"] is None),
        "compare": {
            name: cost_range(prices, name, est.input_tokens, est.max_output_tokens) for name in compare
        },
    }

