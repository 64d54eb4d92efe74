"""`batchrun models`: the endpoint's models and what the price book knows of each."""

from __future__ import annotations

import asyncio
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.config import RunConfig
from batchrun.job.connect import endpoint
from batchrun.send.client import Client, make_pool


async def list_models(cfg: RunConfig) -> list[dict[str, Any]]:
    """The endpoint's models with what the price book knows of each."""
    prices = PriceBook(cfg.prices, None if cfg.simulate else cfg.base_url,
                       context_windows=dict(cfg.context_windows))
    async with endpoint(cfg) as (base_url, key), make_pool(base_url, 2) as pool:
        served = await Client(pool, base_url, key, cfg.timeout).list_models()
    rows = []
    for m in served:
        name = str(m.get("id"))
        described = await asyncio.to_thread(prices.describe, name)
        rows.append({"id": name, "owned_by": m.get("owned_by"), **described,
                     "context_window": prices.context_window(name)})
    return rows

