"""Prices per model and the cost of a usage. Never a guess: unknown means None.

Sources, later ones winning: pydantic's `genai-prices` snapshot bundled with the package (read
offline, never updated at run time; the provider is matched from the base URL, else from the
model name alone), then the user's prices file or `[prices]` tables in batchrun.toml.
Prices are USD per million tokens; `input_tokens` includes cached tokens, which are priced at the
cached-input rate when one is known.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True, slots=True)
class Period:
    """One of a model's prices and when it applies; `active` None means at every other time."""

    price: Price
    active: Callable[[datetime], bool] | None
    label: str


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the snapshot knows of one model: its prices over time and its context window."""

    periods: tuple[Period, ...]  # the last active one applies, as in genai-prices
    window: int | None

    def at(self, when: datetime) -> Period | None:
        for period in reversed(self.periods):
            if period.active is None or period.active(when):
                return period
        return None


_UNKNOWN = _Entry((), None)


def _price_of(mp: Any, source: str) -> Price | None:
    inp, out = _genai_rate(getattr(mp, "input_mtok", None)), _genai_rate(getattr(mp, "output_mtok", None))
    if inp is None or out is None:
        return None
    return Price(inp, out, _genai_rate(getattr(mp, "cache_read_mtok", None)), source)


def _label(constraint: Any) -> str:
    start, end = getattr(constraint, "start_time", None), getattr(constraint, "end_time", None)
    if start is not None and end is not None:
        return f"{start:%H:%M}-{end:%H:%M} UTC"
    since = getattr(constraint, "start_date", None)
    return f"from {since:%Y-%m-%d}" if since is not None else str(constraint)


def _snapshot_entry(model: str, base_url: str | None) -> _Entry:
    """The bundled genai-prices snapshot's prices and context window of a model."""
    found = _genai_model(model, base_url)
    if found is None:
        return _UNKNOWN
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
    return _Entry(tuple(periods), window)


class PriceBook:
    """Looks each model's prices up once and prices usages at the time their request was sent.

    Time is read only through `clock` (epoch seconds), and only where the caller gives no time:
    a provider bills a request at the price in force when it was sent, and some prices depend on
    the hour (DeepSeek's off-peak discount). Prices are kept per provider and model: one model
    name can cost differently at two providers.
    """

    def __init__(
        self,
        user_prices: dict[str, Price] | None = None,
        base_url: str | None = None,
        use_snapshot: bool = True,
        context_windows: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        provider_urls: Mapping[str, str | None] | None = None,
    ) -> None:
        self.user = dict(user_prices or {})
        self.base_url = base_url
        self.provider_urls = dict(provider_urls or {})
        self.use_snapshot = use_snapshot
        self.user_windows = dict(context_windows or {})
        self.clock = clock
        self._snapshot: dict[tuple[str | None, str], _Entry] = {}

    def _entry(self, model: str, provider: str | None) -> _Entry:
        entry = self._snapshot.get((provider, model))
        if entry is None:
            url = self.base_url if provider is None else self.provider_urls.get(provider, self.base_url)
            entry = _snapshot_entry(model, url) if self.use_snapshot else _UNKNOWN
            self._snapshot[(provider, model)] = entry
        return entry

    def _period(self, model: str, at: float | None, provider: str | None) -> Period | None:
        periods = self._entry(model, provider).periods
        if len(periods) == 1:
            return periods[0]
        if not periods:
            return None
        return self._entry(model, provider).at(datetime.fromtimestamp(self.clock() if at is None else at, UTC))

    def context_window(self, model: str, provider: str | None = None) -> int | None:
        """The model's input window in tokens: the config's, else the snapshot's, else None."""
        window = self.user_windows.get(model)
        return window if window is not None else self._entry(model, provider).window

    def price(self, model: str, at: float | None = None, provider: str | None = None) -> Price | None:
        """The price of a model for a request sent at `at` (epoch seconds; default: now), or None."""
        p = self.user.get(model)
        if p is not None:
            return p
        period = self._period(model, at, provider)
        return None if period is None else period.price

    def period(self, model: str, at: float | None = None, provider: str | None = None) -> str | None:
        """Which price period applies at `at`, where a model's price depends on the time; else None."""
        if model in self.user or len(self._entry(model, provider).periods) < 2:
            return None
        period = self._period(model, at, provider)
        return None if period is None else period.label

    def describe(self, model: str, at: float | None = None, provider: str | None = None) -> dict[str, Any]:
        """Where a model's price comes from and its rates (USD per million tokens), for tables."""
        p = self.price(model, at, provider)
        return {
            "price_source": p.source if p else None,
            "price_period": self.period(model, at, provider),
            "input_per_mtok": float(p.input.base) if p else None,
            "output_per_mtok": float(p.output.base) if p else None,
            "cached_input_per_mtok": float(p.cached_input.base) if p and p.cached_input else None,
        }

    def cost(self, model: str, usage: Usage, at: float | None = None, provider: str | None = None) -> float | None:
        """USD for a usage on a model, for a request sent at `at`; None when its price is unknown."""
        p = self.price(model, at, provider)
        return None if p is None else p.cost(usage)

    def most(self, model: str, usage: Usage, provider: str | None = None) -> float | None:
        """The highest a usage can cost on a model at any time: a reservation must hold even if
        the request waits into a dearer period."""
        p = self.user.get(model)
        if p is not None:
            return p.cost(usage)
        costs = [period.price.cost(usage) for period in self._entry(model, provider).periods]
        return max(costs) if costs else None
