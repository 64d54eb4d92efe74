"""Prices for flex processing (`service_tier: "flex"`: synchronous, slower, cheaper where the
provider offers it): the snapshot's flex price of a model, None where it states none. OpenAI
prices flex at its Batch API rates, and genai-prices lists a flex price exactly for the models
OpenAI offers it on; a model without one is unknown, never the live price with a discount
guessed onto it, nor the batch price (another provider's flex is priced otherwise: Groq's costs
what its on-demand tier does)."""

from __future__ import annotations

from datetime import UTC, datetime

from batchrun.account.prices import Price
from batchrun.account.pricing import PriceBook
from batchrun.account.snapshot import FLEX, snapshot_batch_price
from batchrun.records import Usage


def flex_price(book: PriceBook, model: str, at: float | None = None, provider: str | None = None) -> Price | None:
    """A model's flex price (NAME/model or `provider`: that provider's), None where unknown."""
    model, provider = book._split(model, provider)  # noqa: SLF001 (the book's own reading of NAME/model)
    if not book.use_snapshot or model in book.user:  # the user's own price: its flex price is not known
        return None
    url = book.base_url if provider is None else book.provider_urls.get(provider, book.base_url)
    return snapshot_batch_price(model, url, datetime.fromtimestamp(book.clock() if at is None else at, UTC), FLEX,
                                "flex")


class FlexPrices(PriceBook):
    """The same book, pricing every answer at flex (what a flex request's Sender is given)."""

    def __init__(self, book: PriceBook) -> None:
        super().__init__(book.user, book.base_url, book.use_snapshot, book.user_windows, book.clock,
                         book.provider_urls)

    def price(self, model: str, at: float | None = None, provider: str | None = None) -> Price | None:
        """The flex price in force at `at`."""
        return flex_price(self, model, at, provider)

    def most(self, model: str, usage: Usage, provider: str | None = None) -> float | None:
        """A reservation at the flex price (one a request waits for is the one in force then)."""
        p = self.price(model, None, provider)
        return None if p is None else p.cost(usage)
