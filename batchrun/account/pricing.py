"""Prices per model and the cost of a usage. Never a guess: unknown means None.

Sources, later ones winning: pydantic's `genai-prices` snapshot bundled with the package (read
offline, never updated at run time; the provider is matched from the base URL, else from the
model name alone), then the user's prices file or `[prices]` tables in batchrun.toml.
Prices are USD per million tokens; `input_tokens` includes cached tokens, which are priced at the
cached-input rate when one is known.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from batchrun.account.price_cache import cached_entry
from batchrun.account.prices import Price
from batchrun.account.snapshot import UNKNOWN, Entry, Period, snapshot_batch_price, snapshot_entry
from batchrun.records import Usage


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
        self._snapshot: dict[tuple[str | None, str], Entry] = {}
        self._batch: dict[tuple[str | None, str, int | None], Price | None] = {}

    def _split(self, model: str, provider: str | None) -> tuple[str, str | None]:
        """`NAME/model` with NAME a configured provider is that provider's model."""
        if provider is None and self.provider_urls:
            prefix, sep, rest = model.partition("/")
            if sep and rest and prefix in self.provider_urls:
                return rest, prefix
        return model, provider

    def _entry(self, model: str, provider: str | None) -> Entry:
        entry = self._snapshot.get((provider, model))
        if entry is None:
            url = self.base_url if provider is None else self.provider_urls.get(provider, self.base_url)
            entry = cached_entry(model, url, snapshot_entry) if self.use_snapshot else UNKNOWN
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
        model, provider = self._split(model, provider)
        window = self.user_windows.get(model)
        return window if window is not None else self._entry(model, provider).window

    def price(self, model: str, at: float | None = None, provider: str | None = None) -> Price | None:
        """The price of a model for a request sent at `at` (epoch seconds; default: now), or None."""
        model, provider = self._split(model, provider)
        p = self.user.get(model)
        if p is not None:
            return p
        period = self._period(model, at, provider)
        return None if period is None else period.price

    def period(self, model: str, at: float | None = None, provider: str | None = None) -> str | None:
        """Which price period applies at `at`, where a model's price depends on the time; else None."""
        model, provider = self._split(model, provider)
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
            "output_per_mtok": float(p.output.base) if p and p.output else None,
            "cached_input_per_mtok": float(p.cached_input.base) if p and p.cached_input else None,
        }

    def cost(self, model: str, usage: Usage, at: float | None = None, provider: str | None = None) -> float | None:
        """USD for a usage on a model, for a request sent at `at`; None when its price is unknown."""
        p = self.price(model, at, provider)
        return None if p is None else p.cost(usage)

    def batch_price(self, model: str, at: float | None = None) -> Price | None:
        """A model's Batch API price (NAME/model: that provider's): the user's batch_input and
        batch_output, else the snapshot's batch price, else None (unknown: never the live price
        with a guessed discount)."""
        model, provider = self._split(model, None)
        user = self.user.get(model)
        if user is not None and user.batch_input is not None and user.batch_output is not None:
            return Price(user.batch_input, user.batch_output, None, user.source + " (batch)")
        if not self.use_snapshot:
            return None
        key = (provider, model, None if at is None else int(at // 3600))
        if key not in self._batch:
            when = datetime.fromtimestamp(self.clock() if at is None else at, UTC)
            url = self.base_url if provider is None else self.provider_urls.get(provider, self.base_url)
            self._batch[key] = snapshot_batch_price(model, url, when)
        return self._batch[key]

    def most(self, model: str, usage: Usage, provider: str | None = None) -> float | None:
        """The highest a usage can cost on a model at any time: a reservation must hold even if
        the request waits into a dearer period."""
        model, provider = self._split(model, provider)
        p = self.user.get(model)
        if p is not None:
            return p.cost(usage)
        costs = [period.price.cost(usage) for period in self._entry(model, provider).periods]
        known = [c for c in costs if c is not None]
        return max(known) if known and len(known) == len(costs) else None
