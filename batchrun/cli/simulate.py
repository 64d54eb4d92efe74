"""`batchrun mock-server`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from batchrun.cli.app import Opt, app
from batchrun.cli.options import Flag

if TYPE_CHECKING:
    from batchrun.sim.server import Simulator

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_QueueTokens = Annotated[int | None, Opt(help="Batch API: the enqueued-token limit of each model (prompt tokens in "
                                              "unfinished batches); a batch past it fails validation with "
                                              "token_limit_exceeded.")]
_QueueModel = Annotated[list[str] | None, Opt(help="Batch API: MODEL=N, one model's enqueued-token limit "
                                                   "(repeatable).")]
_PerHour = Annotated[int | None, Opt(help="Batch API: batches created per hour at most (429 past it).")]
_Hour = Annotated[float, Opt(help="Batch API: the length of that hour, seconds (shorter for tests).")]
_FlexMs = Annotated[float | None, Opt(help="Offer flex processing (service_tier \"flex\"), answered after this "
                                           "latency (default: flex is not offered: 400).")]
_FlexShare = Annotated[float, Opt(help="Share of flex requests answered 429 Resource Unavailable.")]


@app.command("mock-server")
def mock_server(
    host: Annotated[str, Opt(help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, Opt(help="Port (0 picks a free one).")] = 8000,
    latency_ms: Annotated[float, Opt(help="Mean answer latency.")] = 0.0,
    jitter_ms: Annotated[float, Opt(help="Latency spread, +/-.")] = 0.0,
    error_rate: Annotated[float, Opt(help="Share of requests failing (see --error-kinds).")] = 0.0,
    error_kinds: Annotated[str, Opt(help="How they fail, comma-separated: 500, 503, 429, reset, bad_body, "
                                         "html, timeout.")] = "500,429,reset,bad_body",
    differ_share: Annotated[float, Opt(help="Share of prompts answered differently (a new model that "
                                            "disagrees now and then).")] = 0.0,
    rpm: Annotated[int | None, Opt(help="Requests-per-minute limit, per model.")] = None,
    tpm: Annotated[int | None, Opt(help="Tokens-per-minute limit, per model.")] = None,
    window: Annotated[str, Opt(help="How limits count: bucket (OpenAI, per second), fixed (Azure, "
                                    "--window-s windows) or minute (gateways, calendar minute).")] = "bucket",
    window_s: Annotated[float, Opt(help="Length of a fixed window, seconds.")] = 10.0,
    burst_s: Annotated[float, Opt(help="Seconds of the limit a bucket holds.")] = 1.0,
    no_headers: Annotated[bool, Flag("--no-headers", help="Send no x-ratelimit-* headers.")] = False,
    retry_after: Annotated[str, Opt(help="What a 429 says of the wait: both, seconds, ms or none.")] = "both",
    queue_over: Annotated[int | None, Opt(help="Past N answers at once, hold requests with keep-alives "
                                               "(DeepSeek) instead of refusing.")] = None,
    keepalive_s: Annotated[float, Opt(help="Seconds between keep-alive lines of a held request.")] = 0.5,
    quota: Annotated[int | None, Opt(help="After N billed answers, 429 insufficient_quota.")] = None,
    api_key: Annotated[str | None, Opt(help="Require this key (else 401).", envvar="BATCHRUN_SIM_KEY")] = None,
    strict_models: Annotated[bool, Flag("--strict-models", help="404 for unknown models.")] = False,
    context_window: Annotated[int | None, Opt(help="Reject longer prompts with context_length_exceeded.")] = None,
    seed: Annotated[int, Opt(help="Random seed for latency and errors.")] = 0,
    batch_step_s: Annotated[float, Opt(help="Batch API: seconds a batch spends validating, in progress "
                                            "and finalizing, each.")] = 0.2,
    batch_expire_share: Annotated[float, Opt(help="Batch API: share of lines left unanswered the first "
                                                  "time they are sent (the batch ends expired).")] = 0.0,
    fail_batch_validation: Annotated[bool, Flag("--fail-batch-validation",
                                                help="Batch API: refuse every batch at validation.")] = False,
    batch_lines_per_s: Annotated[float | None, Opt(help="Batch API: the provider's capacity, lines a second "
                                                        "answered across all batches (default: no limit).")] = None,
    batch_queue_tokens: _QueueTokens = None,
    batch_queue_model: _QueueModel = None,
    batches_per_hour: _PerHour = None, batch_hour_s: _Hour = 3600.0,
    flex_latency_ms: _FlexMs = None, flex_unavailable_share: _FlexShare = 0.0,
) -> None:
    """Serve the built-in OpenAI-compatible simulator on loopback until Ctrl-C."""
    from batchrun.errors import ConfigError
    from batchrun.sim.server import SimConfig, Simulator

    if host not in LOOPBACK:  # (Simulator checks every other value: a ConfigError naming the flag)
        raise ConfigError(f"--host {host!r}: the simulator serves on loopback only")
    sim = Simulator(SimConfig(
        latency_ms=latency_ms, jitter_ms=jitter_ms, error_rate=error_rate, rpm=rpm, tpm=tpm,
        error_kinds=tuple(k.strip() for k in error_kinds.split(",") if k.strip()), differ_share=differ_share,
        headers=not no_headers, window=window, window_s=window_s, burst_s=burst_s,
        retry_after=retry_after, queue_over=queue_over, keepalive_s=keepalive_s, quota=quota,
        api_key=api_key, strict_models=strict_models, context_window=context_window, seed=seed,
        batch_step_s=batch_step_s, batch_expire_share=batch_expire_share,
        fail_batch_validation=fail_batch_validation, batch_lines_per_s=batch_lines_per_s,
        batch_queue_tokens=batch_queue_tokens, batch_hour_s=batch_hour_s, flex_latency_ms=flex_latency_ms,
        batch_queue_models=_model_limits(batch_queue_model or []), batches_per_hour=batches_per_hour,
        flex_unavailable_share=flex_unavailable_share))
    try:
        asyncio.run(_serve(sim, host, port))
    except KeyboardInterrupt:
        pass


def _model_limits(items: list[str]) -> dict[str, int]:
    """--batch-queue-model MODEL=N values, by model."""
    from batchrun.errors import ConfigError

    out: dict[str, int] = {}
    for item in items:
        model, _, n = item.rpartition("=")
        if not model or not n.strip().isdigit():
            raise ConfigError(f"--batch-queue-model {item!r}: expected MODEL=N, N a whole number of tokens")
        out[model] = int(n)
    return out


async def _serve(sim: Simulator, host: str, port: int) -> None:
    """Serve until cancelled (Ctrl-C)."""
    url = await sim.start(host, port)
    typer.echo(f"batchrun simulator serving {url} (Ctrl-C to stop)", err=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
