"""`batchrun mock-server`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from batchrun.cli.app import Opt, app


@app.command("mock-server")
def mock_server(
    host: Annotated[str, Opt(help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, Opt(help="Port (0 picks a free one).")] = 8000,
    latency_ms: Annotated[float, Opt(help="Mean answer latency.")] = 0.0,
    jitter_ms: Annotated[float, Opt(help="Latency spread, +/-.")] = 0.0,
    error_rate: Annotated[float, Opt(help="Share of requests failing (500, 429, reset, bad body).")] = 0.0,
    rpm: Annotated[int | None, Opt(help="Requests-per-minute limit.")] = None,
    tpm: Annotated[int | None, Opt(help="Tokens-per-minute limit.")] = None,
    no_headers: Annotated[bool, Opt("--no-headers", help="Send no x-ratelimit-* or retry-after headers.")] = False,
    window: Annotated[str, Opt(help="bucket (rolling) or minute (calendar minute).")] = "bucket",
    api_key: Annotated[str | None, Opt(help="Require this key (else 401).", envvar="BATCHRUN_SIM_KEY")] = None,
    strict_models: Annotated[bool, Opt("--strict-models", help="404 for unknown models.")] = False,
    context_window: Annotated[int | None, Opt(help="Reject longer prompts with context_length_exceeded.")] = None,
    seed: Annotated[int, Opt(help="Random seed for latency and errors.")] = 0,
) -> None:
    """Serve the built-in OpenAI-compatible simulator on loopback until Ctrl-C."""
    from batchrun.errors import ConfigError
    from batchrun.sim.server import SimConfig, Simulator

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--host {host!r}: the simulator serves on loopback only")
    if window not in ("bucket", "minute"):
        raise ConfigError(f"--window {window!r}: expected bucket or minute")
    if not 0.0 <= error_rate <= 1.0:
        raise ConfigError(f"--error-rate {error_rate}: expected a share from 0 to 1")
    sim = Simulator(SimConfig(
        latency_ms=latency_ms, jitter_ms=jitter_ms, error_rate=error_rate, rpm=rpm, tpm=tpm,
        headers=not no_headers, window=window, api_key=api_key, strict_models=strict_models,
        context_window=context_window, seed=seed,
    ))

    async def serve() -> None:
        url = await sim.start(host, port)
        typer.echo(f"batchrun simulator serving {url} (Ctrl-C to stop)", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass

