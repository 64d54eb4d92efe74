"""Prices per model and the cost of a usage. Never a guess: unknown means None.

Sources, later ones winning: pydantic's `genai-prices` snapshot bundled with the package (read
offline, never updated at run time; the provider is matched from the base URL, else from the
model name alone), then the user's prices file or `[prices]` tables in batchrun.toml.
Prices are USD per million tokens; `input_tokens` includes cached tokens, which are priced at the
cached-input rate when one is known.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from batchrun.errors import ConfigError
from batchrun.records import Usage


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per million tokens; with tiers, crossing a tier's input size prices all tokens there."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, total_input: int) -> Decimal:
        """The rate for a request of `total_input` input tokens."""
        for start, price in reversed(self.tiers):
            if total_input > start:
                return price
        return self.base


@dataclass(frozen=True, slots=True)
class Price:
    """What one model costs, and where the figures come from."""

    input: Rate
    output: Rate
    cached_input: Rate | None
    source: str
    _flat: tuple[int, int, int | None] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flat = not (self.input.tiers or self.output.tiers or (self.cached_input and self.cached_input.tiers))
        # The common untiered case, scaled once: cost() is on every record's path.
        object.__setattr__(self, "_flat", (
            _scaled(self.input.base), _scaled(self.output.base),
            _scaled(self.cached_input.base) if self.cached_input is not None else None,
        ) if flat else None)

    def cost(self, usage: Usage) -> float:
        """USD for one usage, exact to the last bit (integer arithmetic on scaled prices)."""
        flat = self._flat
        if flat is not None:
            rin, rout, rcached = flat
            if rcached is None:
                return (usage.input_tokens * rin + usage.output_tokens * rout) / _SCALE_PER_MTOK
            cached = min(usage.cached_tokens, usage.input_tokens)
            return ((usage.input_tokens - cached) * rin + usage.output_tokens * rout
                    + cached * rcached) / _SCALE_PER_MTOK
        n_in = usage.input_tokens
        cached = min(usage.cached_tokens, n_in) if self.cached_input is not None else 0
        scaled = _scaled(self.input.at(n_in)) * (n_in - cached) + _scaled(self.output.at(n_in)) * usage.output_tokens
        if cached:
            scaled += _scaled(self.cached_input.at(n_in)) * cached  # type: ignore[union-attr]
        return scaled / _SCALE_PER_MTOK  # int / int is correctly rounded

# Prices are kept as integers in units of 1e-12 USD per million tokens: every published price
# (a few decimals) is then exact, and so is any sum of token counts times them.
_PRICE_SCALE = 10**12

_SCALE_PER_MTOK = _PRICE_SCALE * 1_000_000


@lru_cache(maxsize=256)
def _scaled(rate: Decimal) -> int:
    return int((rate * _PRICE_SCALE).to_integral_value())  # exact for prices of up to 12 decimals


def _rate_from(value: Any, where: str) -> Rate:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where} must be a number of USD per million tokens")
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"{where} must be a number of USD per million tokens") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{where} must be a non-negative number")
    return Rate(d)


def parse_price_tables(models: Any, source: str) -> dict[str, Price]:
    """Prices from `[models."NAME"]` tables (`input`, `output`, optional `cached_input`)."""
    if not isinstance(models, dict):
        raise ConfigError(f"{source}: expected tables [models.\"NAME\"] with input and output prices")
    out: dict[str, Price] = {}
    for name, table in models.items():
        where = f'{source}: [models."{name}"]'
        if not isinstance(table, dict) or "input" not in table or "output" not in table:
            raise ConfigError(f"{where} needs both input and output (USD per million tokens)")
        cached = table.get("cached_input")
        out[str(name)] = Price(
            _rate_from(table["input"], f"{where} input"),
            _rate_from(table["output"], f"{where} output"),
            _rate_from(cached, f"{where} cached_input") if cached is not None else None,
            source,
        )
    return out


def load_prices_file(path: Path) -> dict[str, Price]:
    """Read a prices TOML file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"prices file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read prices file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"prices file {path} is not valid TOML: {e}") from None
    return parse_price_tables(doc.get("models", {}), f"prices file {path}")


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
    return None


def _snapshot_entry(model: str, base_url: str | None) -> tuple[Price | None, int | None]:
    """The bundled genai-prices snapshot's price and context window of a model (None if unknown)."""
    found = _genai_model(model, base_url)
    if found is None:
        return None, None
    provider, info = found
    window = getattr(info, "context_window", None)
    try:
        mp = info.get_prices(datetime.now(UTC))
    except (LookupError, ValueError):
        return None, window
    inp, out = _genai_rate(getattr(mp, "input_mtok", None)), _genai_rate(getattr(mp, "output_mtok", None))
    if inp is None or out is None:
        return None, window
    cached = _genai_rate(getattr(mp, "cache_read_mtok", None))
    return Price(inp, out, cached, f"genai-prices ({provider.id})"), window


class PriceBook:
    """Looks a model's price up once and prices usages."""

    def __init__(
        self,
        user_prices: dict[str, Price] | None = None,
        base_url: str | None = None,
        use_snapshot: bool = True,
        context_windows: dict[str, int] | None = None,
    ) -> None:
        self.user = dict(user_prices or {})
        self.base_url = base_url
        self.use_snapshot = use_snapshot
        self.user_windows = dict(context_windows or {})
        self._snapshot: dict[str, tuple[Price | None, int | None]] = {}

    def _from_snapshot(self, model: str) -> tuple[Price | None, int | None]:
        entry = self._snapshot.get(model)
        if entry is None:
            entry = _snapshot_entry(model, self.base_url) if self.use_snapshot else (None, None)
            self._snapshot[model] = entry
        return entry

    def context_window(self, model: str) -> int | None:
        """The model's input window in tokens: the config's, else the snapshot's, else None."""
        window = self.user_windows.get(model)
        return window if window is not None else self._from_snapshot(model)[1]

    def price(self, model: str) -> Price | None:
        """The price of a model, or None if no source knows it."""
        p = self.user.get(model)
        return p if p is not None else self._from_snapshot(model)[0]

    def describe(self, model: str) -> dict[str, Any]:
        """Where a model's price comes from and its rates (USD per million tokens), for tables."""
        p = self.price(model)
        return {
            "price_source": p.source if p else None,
            "input_per_mtok": float(p.input.base) if p else None,
            "output_per_mtok": float(p.output.base) if p else None,
            "cached_input_per_mtok": float(p.cached_input.base) if p and p.cached_input else None,
        }

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for a usage on a model, or None when its price is unknown."""
        p = self.price(model)
        return None if p is None else p.cost(usage)

