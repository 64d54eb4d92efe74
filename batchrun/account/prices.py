"""What a price is: USD per million tokens, possibly tiered, costed in exact integer arithmetic;
and the user's own prices, from a TOML prices file or `[prices]` tables in batchrun.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """What one model costs, and where the figures come from. `output` is None for a model priced
    by input alone (embedding models, in genai-prices): output on it has no known price."""

    input: Rate
    output: Rate | None
    cached_input: Rate | None
    source: str
    # the provider's Batch API rates, where the user's prices file states them (batch_input, batch_output)
    batch_input: Rate | None = None
    batch_output: Rate | None = None
    _flat: tuple[int, int, int | None] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        out = self.output or Rate(Decimal(0))  # only ever applied to zero output tokens
        flat = not (self.input.tiers or out.tiers or (self.cached_input and self.cached_input.tiers))
        # The common untiered case, scaled once: cost() is on every record's path.
        object.__setattr__(self, "_flat", (
            _scaled(self.input.base), _scaled(out.base),
            _scaled(self.cached_input.base) if self.cached_input is not None else None,
        ) if flat else None)

    def cost(self, usage: Usage) -> float | None:
        """USD for one usage, exact to the last bit (integer arithmetic on scaled prices); None
        when it has output tokens and the output price is unknown (never a guess)."""
        if self.output is None and usage.output_tokens:
            return None
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
        scaled = _scaled(self.input.at(n_in)) * (n_in - cached)
        if self.output is not None:
            scaled += _scaled(self.output.at(n_in)) * usage.output_tokens
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
    """Prices from `[models."NAME"]` tables (`input`, `output`, optional `cached_input`, and
    `batch_input` with `batch_output` for the provider's Batch API)."""
    if not isinstance(models, dict):
        raise ConfigError(f"{source}: expected tables [models.\"NAME\"] with input and output prices")
    out: dict[str, Price] = {}
    for name, table in models.items():
        where = f'{source}: [models."{name}"]'
        if not isinstance(table, dict) or "input" not in table or "output" not in table:
            raise ConfigError(f"{where} needs both input and output (USD per million tokens)")
        cached = table.get("cached_input")
        batch = [_rate_from(table[k], f"{where} {k}") if table.get(k) is not None else None
                 for k in ("batch_input", "batch_output")]
        if (batch[0] is None) != (batch[1] is None):
            raise ConfigError(f"{where} needs both batch_input and batch_output, or neither")
        out[str(name)] = Price(
            _rate_from(table["input"], f"{where} input"),
            _rate_from(table["output"], f"{where} output"),
            _rate_from(cached, f"{where} cached_input") if cached is not None else None,
            source,
            batch[0],
            batch[1],
        )
    return out


def load_prices_file(path: Path) -> dict[str, Price]:
    """Read a prices TOML file."""
    import tomllib  # only with --prices: a plain run reads no TOML

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"prices file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read prices file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"prices file {path} is not valid TOML: {e}") from None
    return parse_price_tables(doc.get("models", {}), f"prices file {path}")


def parse_windows(t: Any, where: str) -> dict[str, int]:
    """`[context_windows]`: model names to token counts (what --chunk-long and fallbacks use when
    the price snapshot knows no window)."""
    if not isinstance(t, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in t.values()):
        raise ConfigError(f"{where}: [context_windows] must map models to token counts")
    return t


def user_prices(doc: dict[str, Any], prices_file: Path | None, doc_name: str) -> dict[str, Price]:
    """User prices: the config file's `[prices]` tables, then --prices on top."""
    prices: dict[str, Price] = {}
    if isinstance(doc.get("prices"), dict):
        prices.update(parse_price_tables(doc["prices"].get("models", {}), f"config file {doc_name}"))
    if prices_file is not None:
        prices.update(load_prices_file(prices_file))
    return prices
