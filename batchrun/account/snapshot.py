"""Prices and context windows from pydantic's `genai-prices` snapshot bundled with the package:
read offline, never updated at run time. A model may have several prices over time (DeepSeek's
off-peak hours); each is a Period, the last one active at a moment applies, as in genai-prices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from batchrun.account.prices import Price, Rate


def _genai_rate(value: Any) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return Rate(value)
    base = getattr(value, "base", None)
    tiers = getattr(value, "tiers", None)
    if isinstance(base, Decimal) and tiers is not None:
        return Rate(base, tuple((int(t.start), Decimal(t.price)) for t in tiers))
    return None


def _genai_model(model: str, base_url: str | None) -> Any:
    """(provider, model info) from the bundled genai-prices snapshot, or None."""
    from genai_prices import data_snapshot  # imported lazily: it takes a quarter second

    snap = data_snapshot.get_snapshot()
    for url in (base_url, None):
        try:
            return snap.find_provider_model(model, None, None, url)
        except LookupError:
            continue
    return _listed_alike(snap, model)


def _listed_alike(snap: Any, model: str) -> Any:
    """(provider, model info) where a name matches no provider's name pattern (OpenAI's does not
    cover its embedding models) but every provider listing the model prices it the same; None
    where they differ or none lists it: then no one price is the model's."""
    found = [(p, info) for p in snap.providers if (info := p.find_model(model)) is not None]
    prices = {repr(info.prices) for _, info in found}
    return found[0] if len(prices) == 1 else None


@dataclass(frozen=True, slots=True)
class Period:
    """One of a model's prices and when it applies; `active` None means at every other time."""

    price: Price
    active: Callable[[datetime], bool] | None
    label: str


@dataclass(frozen=True, slots=True)
class Entry:
    """What the snapshot knows of one model: its prices over time and its context window."""

    periods: tuple[Period, ...]  # the last active one applies, as in genai-prices
    window: int | None

    def at(self, when: datetime) -> Period | None:
        for period in reversed(self.periods):
            if period.active is None or period.active(when):
                return period
        return None


UNKNOWN = Entry((), None)


def _price_of(mp: Any, source: str) -> Price | None:
    inp, out = _genai_rate(getattr(mp, "input_mtok", None)), _genai_rate(getattr(mp, "output_mtok", None))
    if inp is None:
        return None
    # an input-only price (embedding models) prices input; output on it stays unknown
    return Price(inp, out, _genai_rate(getattr(mp, "cache_read_mtok", None)), source)


def _label(constraint: Any) -> str:
    start, end = getattr(constraint, "start_time", None), getattr(constraint, "end_time", None)
    if start is not None and end is not None:
        return f"{start:%H:%M}-{end:%H:%M} UTC"
    since = getattr(constraint, "start_date", None)
    return f"from {since:%Y-%m-%d}" if since is not None else str(constraint)


def snapshot_entry(model: str, base_url: str | None) -> Entry:
    """The bundled genai-prices snapshot's prices and context window of a model."""
    found = _genai_model(model, base_url)
    if found is None:
        return UNKNOWN
    provider, info = found
    window = getattr(info, "context_window", None)
    source = f"genai-prices ({provider.id})"
    raw = info.prices if isinstance(info.prices, list) else [None]
    periods: list[Period] = []
    for cp in raw:
        mp = info.prices if cp is None else cp.prices
        price = _price_of(mp, source)
        if price is None:
            continue
        constraint = None if cp is None else cp.constraint
        periods.append(Period(price, None if constraint is None else constraint.active,
                              "standard" if constraint is None else _label(constraint)))
    if len(periods) > 1 and periods[0].active is None:
        others = ", ".join(p.label for p in periods[1:])
        periods[0] = Period(periods[0].price, None, f"outside {others}")
    return Entry(tuple(periods), window)


BATCH = {"processing": "batch"}  # genai-prices' request context for the provider's Batch API


FLEX = {"service_tier": "flex"}  # and for flex processing (OpenAI's `service_tier: "flex"`)


def snapshot_batch_price(model: str, base_url: str | None, when: datetime, context: dict[str, str] = BATCH,
                         label: str = "batch") -> Price | None:
    """The snapshot's Batch API price (or flex price, with FLEX) of a model at `when`, None where
    it states none (never the standard price with a discount guessed onto it)."""
    found = _genai_model(model, base_url)
    if found is None:
        return None
    provider, info = found
    variants = [v for v in getattr(info, "price_variants", None) or () if v.when == context]
    if not any(v.constraint is None or v.constraint.active(when) for v in variants):
        return None
    return _price_of(info.get_prices(when, dict(context)), f"genai-prices ({provider.id}, {label})")
