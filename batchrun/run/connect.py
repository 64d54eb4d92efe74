"""Where requests go: the configured endpoint, or an in-process simulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from batchrun.config import RunConfig
from batchrun.secret import ApiKey


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

