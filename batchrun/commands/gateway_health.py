"""`batchrun providers`: a gateway's (LiteLLM's) `/models` lists what it is configured for and
probes nothing, and it names itself in no header there, so a gateway whose upstream is down
would look healthy. Each named model therefore gets one one-token request (a fraction of a cent),
at any provider, and its failure is the row's problem."""

from __future__ import annotations

import asyncio
from typing import Any

from batchrun.errors import RequestError
from batchrun.send.client import Client

PROBE = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


async def probe_upstreams(client: Client, models: list[str], row: dict[str, Any]) -> None:
    """Ask each model once through the gateway; note the ones whose upstream does not answer."""
    errors = await asyncio.gather(*(_probe(client, m) for m in models))
    down = {m: e for m, e in zip(models, errors, strict=True) if e is not None}
    row["upstream_down"] = sorted(down)
    if down:
        row["problem"] = "; ".join(f"{m} does not answer ({e})"
                                   for m, e in sorted(down.items()))


async def _probe(client: Client, model: str) -> str | None:
    try:
        await client.send_once({"model": model, **PROBE})
    except RequestError as e:
        return e.message
    return None
