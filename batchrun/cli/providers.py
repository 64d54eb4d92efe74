"""`batchrun providers`: the configured providers' health, for a person or for cron."""

from __future__ import annotations

import asyncio

from batchrun.cli.app import _show, app
from batchrun.cli.options import ApiKeyEnv, BaseUrl, Config, Json, Model, Simulate
from batchrun.errors import ExitCode


@app.command()
def providers(
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    simulate: Simulate = False,
    config: Config = None,
    json_: Json = False,
) -> None:
    """Check each provider in batchrun.toml: reachable, key accepted, latency, models served.
    Exit 0 when all are healthy, 1 otherwise."""
    from batchrun.commands.health import check_providers
    from batchrun.config import resolve
    from batchrun.show.routing import format_providers_health

    cfg = resolve({"model": model, "base_url": base_url, "api_key_env": api_key_env, "simulate": simulate},
                  config_path=config, need_key=False)
    rows = asyncio.run(check_providers(cfg))
    _show(rows, json_, lambda r: [format_providers_health(r)])
    if not all(r["healthy"] for r in rows):
        raise SystemExit(ExitCode.SOME_FAILED)
