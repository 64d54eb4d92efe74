"""Flex processing as `--deadline`'s third path: a provider configured with `flex = true` is
asked for `service_tier: "flex"` (OpenAI: the Batch API's prices, answered synchronously but
slower, and now and then a 429 "Resource Unavailable") for the records the plan sends live.

A live shard goes at flex where flex is the cheaper (both prices known) and the standard live
path could still take over every record left to send live after one more look; while it sends,
each look asks that again, and the moment it no longer holds the flex send is stopped cleanly
(what is in flight is answered and written) and the rest of the shard goes at the standard
tier. So flex never costs the deadline more than one look, and a record is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from batchrun.account.flex import FlexPrices, flex_price
from batchrun.account.pricing import PriceBook
from batchrun.batch.plan import Shard
from batchrun.config import RunConfig
from batchrun.errors import StopReason
from batchrun.job.batch_api.batch_live import send_live

# The reason a flex send is stopped with: one a live shard's pipeline never stops for otherwise,
# so the run tells its own cut from a signal's stop.
CUT = StopReason.BATCHES_RUNNING
Look = tuple[float, float, int, float, float]  # now, aim, records left to send live, live rate, look's length
# How long a flex answer may take, where the provider's flex_wait_s does not say: a request sent
# at flex cannot be sent again while it may still be answered, so a flex send is stopped this
# long before the standard tier would have to take over. OpenAI asks clients to wait up to 15
# minutes for flex; a minute is what it takes when it has capacity to spare.
FLEX_WAIT_S = 60.0


def flex_config(cfg: RunConfig) -> RunConfig:
    """The run's configuration with every flex provider asked for service_tier "flex"."""
    providers = tuple(dataclasses.replace(p, extra_body=(*p.extra_body, ("service_tier", "flex"))) if p.flex
                      else p for p in cfg.routing.providers)
    return dataclasses.replace(cfg, routing=dataclasses.replace(cfg.routing, providers=providers))


class FlexPath:
    """Which live shards go at flex, and when a flex send must give way to the standard tier."""

    def __init__(self, cfg: RunConfig, prices: PriceBook) -> None:
        self.cfg, self.prices = cfg, prices
        self.offered = {p.name for p in cfg.routing.providers if p.flex}
        self.flex_cfg = flex_config(cfg) if self.offered else cfg
        self.flex_prices = FlexPrices(prices) if self.offered else prices
        self.wait = {p.name: p.flex_wait_s or FLEX_WAIT_S for p in cfg.routing.providers if p.flex}

    def cheaper(self, shard: Shard) -> bool:
        """Flex is offered for the shard's provider and costs less than its live price (both known)."""
        if shard.provider not in self.offered:
            return False
        live, flex = self.prices.price(shard.model), flex_price(self.prices, shard.model)
        if live is None or flex is None:
            return False
        return _per_token(flex) < _per_token(live)

    def fits(self, shard: Shard, seen: Look, waited: float = 0.0) -> bool:
        """Whether the standard live path could still answer every record left to send live by the
        aim (the deadline less its margin) if it took them over after one more look and after the
        flex requests in flight were answered (`waited`: how long a flex send has gone unanswered)."""
        now, aim, left, rps, look = seen
        wait = max(self.wait.get(shard.provider or "", FLEX_WAIT_S), waited)
        return rps > 0 and now + look + wait + left / rps <= aim

    async def watch(self, shard: Shard, look: Callable[[], Look], unanswered_s: Callable[[], float],
                    stop: Callable[[], bool]) -> None:
        """While a flex send runs: at each look, stop it once the standard path must take over
        (`look()` gives now, aim, records left to send live, the live rate, and the look's length;
        `unanswered_s()`: how long the send has gone without an answer; `stop()` is False while the
        send has not started)."""
        while True:
            seen = look()
            if not self.fits(shard, seen, unanswered_s()) and stop():
                return
            await asyncio.sleep(seen[4])


def _per_token(p: Any) -> float:
    """A price's input and output rates together (flex at the batch rates is below on both)."""
    return float(p.input.base) + float(p.output.base if p.output else 0)


async def send_flex(path: FlexPath, shard: Shard, run: Any, url: str, key: Any,
                    look: Callable[[], Look]) -> StopReason | None:
    """Send a live shard at flex, watched: why it stopped (CUT: the standard tier takes over)."""
    pipes: list[Any] = []
    started, done = time.monotonic(), run.state.stats.done

    def unanswered_s() -> float:
        return time.monotonic() - started if run.state.stats.done == done else 0.0

    def on_pipeline(pipe: Any) -> None:
        pipes[:] = [pipe] if pipe is not None else []
        run._on_pipeline(pipe)  # the run's signals stop it too

    def stop() -> bool:
        for pipe in pipes:
            pipe.stop(CUT)
        return bool(pipes)

    watch = asyncio.create_task(path.watch(shard, look, unanswered_s, stop))
    try:
        return await send_live(path.flex_cfg, run.state, shard, run.dir, run.out, url, key, on_pipeline,
                               path.flex_prices)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
