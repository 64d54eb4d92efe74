"""`batchrun providers`: is each configured provider reachable, does it take its key, does it
serve the models the config names? GET /models with each provider's key, all at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from batchrun.commands.gateway_health import probe_upstreams
from batchrun.config import RunConfig
from batchrun.errors import AuthError, RequestError
from batchrun.job.connect import endpoint
from batchrun.route.providers import Targets
from batchrun.secret import ApiKey, redact_url
from batchrun.send.client import Client, make_pool


async def check_providers(cfg: RunConfig) -> list[dict[str, Any]]:
    """One row per provider (the default endpoint too when no provider is configured, or when a
    named model goes there)."""
    targets = Targets(p.name for p in cfg.routing.providers)
    wanted: dict[str | None, list[str]] = {}
    for model in dict.fromkeys(cfg.models_named()):
        t = targets(model)
        wanted.setdefault(t.provider, []).append(t.model)
    async with endpoint(cfg) as (base_url, key):
        checks = [(p.name, p.base_url, p.api_key, p.api_key_env, dict(p.headers)) for p in cfg.routing.providers]
        if not checks or None in wanted:
            checks.insert(0, ("default", base_url, key, cfg.api_key_env, {}))
        return list(await asyncio.gather(*(
            _check_at(cfg, url, k, h, name, env, wanted.get(None if name == "default" else name, []))
            for name, url, k, env, h in checks
        )))


async def _check_at(cfg: RunConfig, url: str, key: ApiKey, headers: dict[str, str], name: str,
                    key_env: str | None, wanted: list[str]) -> dict[str, Any]:
    """One provider's row, over a connection of its own."""
    async with make_pool(url, 2) as pool:
        return await _check(Client(pool, url, key, cfg.timeout, headers=headers), name, url, key, key_env, wanted)


async def _check(client: Client, name: str, url: str, key: ApiKey, key_env: str | None,
                 wanted: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"provider": name, "base_url": redact_url(url), "reachable": False,
                           "key_accepted": None, "latency_ms": None, "models": None,
                           "missing_models": [], "problem": None}
    if key.reveal() is None and key_env:
        row["problem"] = f"{key_env} is not set"
    started = time.monotonic()
    try:
        served = await client.list_models()
    except AuthError as e:
        row.update(reachable=True, key_accepted=False, problem=f"key refused: {e.message}")
    except RequestError as e:
        row["reachable"] = e.status is not None
        row["problem"] = e.message
    else:
        ids = {str(m.get("id")) for m in served}
        missing = [m for m in wanted if m not in ids]
        row.update(reachable=True, key_accepted=True, models=len(ids), missing_models=missing)
        if missing:
            row["problem"] = "does not serve " + ", ".join(missing)
        elif wanted:
            await probe_upstreams(client, wanted, row)
        elif key.reveal() is None and key_env:
            row["problem"] = None  # a keyless local server that answers is fine
    if row["reachable"]:
        row["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    row["healthy"] = bool(row["reachable"] and row["key_accepted"] and not row["missing_models"]
                          and not row.get("upstream_down"))
    return row
