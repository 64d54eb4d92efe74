"""Where requests go: the configured endpoint, or an in-process simulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from batchrun.config import RunConfig
from batchrun.secret import ApiKey
from batchrun.send.client import Client, make_pool


@contextlib.asynccontextmanager
async def endpoint(cfg: RunConfig) -> AsyncIterator[tuple[str, ApiKey]]:
    """The base URL and key to use: the real ones, or an in-process simulator's."""
    if not cfg.simulate:
        yield cfg.base_url, cfg.api_key
        return
    from batchrun.sim.server import SimConfig, Simulator  # only when simulating: it is a server

    sim = Simulator(SimConfig(latency_ms=20.0, jitter_ms=15.0, seed=7))
    url = await sim.start()
    try:
        yield url, ApiKey("sim-key")
    finally:
        await sim.stop()



@contextlib.asynccontextmanager
async def clients(cfg: RunConfig, base_url: str, key: ApiKey) -> AsyncIterator[dict[str | None, Client]]:
    """One client per provider (None: the default endpoint), each with its own connection pool
    and key, closed together."""
    async with contextlib.AsyncExitStack() as stack:
        out: dict[str | None, Client] = {}
        out[None] = Client(await stack.enter_async_context(make_pool(base_url, cfg.concurrency)), base_url, key,
                           cfg.timeout, cfg.max_request_time)
        for p in cfg.routing.providers:
            session = await stack.enter_async_context(make_pool(p.base_url, cfg.concurrency))
            out[p.name] = Client(session, p.base_url, p.api_key, cfg.timeout, cfg.max_request_time,
                                 dict(p.headers), dict(p.extra_body))
        yield out
