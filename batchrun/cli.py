"""The Typer app: options in, a RunConfig out, and the one place errors become exit codes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from batchrun.errors import BatchrunError


class _Group(TyperGroup):
    """Turns every BatchrunError into one sentence on stderr and its exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored click) Context
        try:
            return super().invoke(ctx)
        except BatchrunError as e:
            typer.echo(f"batchrun: {e.message}", err=True)
            raise SystemExit(e.exit_code) from None
        except KeyboardInterrupt:  # before the job's own handlers were in place: nothing was sent
            typer.echo("batchrun: interrupted before any request was sent", err=True)
            raise SystemExit(130) from None


app = typer.Typer(
    cls=_Group,
    help="Push a JSONL file of LLM work through an OpenAI-compatible API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Opt = typer.Option


@app.command()
def process(
    input: Annotated[Path, typer.Argument(help="JSONL input file.", show_default=False)],
    output: Annotated[
        Path | None, Opt("-o", "--output", help="Results file (default: INPUT stem + .results.jsonl).")
    ] = None,
    model: Annotated[str | None, Opt(help="Model for records that name none.")] = None,
    base_url: Annotated[
        str | None, Opt(help="API base URL (env BATCHRUN_BASE_URL, OPENAI_BASE_URL; default OpenAI).")
    ] = None,
    api_key_env: Annotated[
        str | None,
        Opt(help="Read the API key from this env variable (default: BATCHRUN_API_KEY, else OPENAI_API_KEY)."),
    ] = None,
    concurrency: Annotated[int | None, Opt(help="Requests in flight at most (default: 16).")] = None,
    rpm: Annotated[float | None, Opt(help="Requests per minute (default: learned).")] = None,
    tpm: Annotated[float | None, Opt(help="Tokens per minute (default: learned).")] = None,
    max_attempts: Annotated[int | None, Opt(help="Attempts per record (default: 6).")] = None,
    timeout: Annotated[float | None, Opt(help="Seconds per attempt (default: 120).")] = None,
    max_cost: Annotated[float | None, Opt(help="Hard cap in USD for the whole job.")] = None,
    prices: Annotated[Path | None, Opt(help="TOML prices file (USD per million tokens).")] = None,
    template: Annotated[str | None, Opt(help='User message for plain records, e.g. "Classify: {text}".')] = None,
    system: Annotated[str | None, Opt(help="System message for plain records.")] = None,
    max_tokens: Annotated[int | None, Opt(help="max_tokens for requests that set none.")] = None,
    fallback_model: Annotated[list[str] | None, Opt(help="Model to fall back to (repeatable).")] = None,
    simulate: Annotated[bool, Opt("--simulate", help="Run against the built-in simulator.")] = False,
    summary_json: Annotated[Path | None, Opt(help="Write the summary JSON here.")] = None,
    fresh: Annotated[bool, Opt("--fresh", help="Start the job over (old output moved aside).")] = False,
    retry_failed: Annotated[
        bool, Opt("--retry-failed", help="Send again the records whose lines are errors.")
    ] = False,
    config: Annotated[Path | None, Opt(help="Config file (default: ./batchrun.toml if present).")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="Summary only.")] = False,
    drain_timeout: Annotated[
        float | None, Opt(help="Seconds to let in-flight requests finish on a stop (default: 30).")
    ] = None,
    max_line_bytes: Annotated[int | None, Opt(help="Longer lines are bad lines (default: 16 MiB).")] = None,
    log_file: Annotated[Path | None, Opt(help="Append progress and messages to this file.")] = None,
    progress_interval: Annotated[
        float | None, Opt(help="Seconds between plain progress lines off a terminal (default: 10).")
    ] = None,
) -> None:
    """Send every record of INPUT to the API and write one result line per record."""
    from batchrun.config import resolve
    from batchrun.display import Display
    from batchrun.job import run_job

    flags = dict(locals())
    config_path = flags.pop("config")
    flags["fallback_model"] = tuple(fallback_model or ())
    cfg = resolve(flags, config_path=config_path)
    display = Display("quiet" if cfg.quiet else None, cfg.log_file,
                      plain_interval_s=cfg.progress_interval)
    # Until the pipeline installs its own handlers (a clean drain), SIGTERM ends us quietly:
    # nothing has been sent yet.
    signal.signal(signal.SIGTERM, _early_sigterm)
    try:
        outcome = asyncio.run(run_job(cfg, display))
    finally:
        display.close()
    raise typer.Exit(outcome.exit_code)


@app.command()
def status(
    input: Annotated[Path, typer.Argument(help="The job's JSONL input file.", show_default=False)],
    output: Annotated[Path | None, Opt("-o", "--output", help="The job's results file, if not the default.")] = None,
    json_: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """Show a job's progress from its checkpoint: done, failed, remaining, spend, last run."""
    from batchrun.config import default_output
    from batchrun.display import format_status
    from batchrun.job import job_status

    _show(job_status(input, output or default_output(input)), json_, format_status)


def _early_sigterm(signum: int, frame: Any) -> None:
    typer.echo("batchrun: terminated before any request was sent", err=True)
    raise SystemExit(143)


def _show(data: Any, as_json: bool, render: Callable[[Any], list[Any]]) -> None:
    """Print a command's data as JSON, or rendered for a person."""
    if as_json:
        import orjson

        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        from batchrun.display import Display

        Display().lines(render(data))


def _names(text: str | None) -> list[str]:
    return [m.strip() for m in (text or "").split(",") if m.strip()]


@app.command()
def estimate(
    input: Annotated[Path, typer.Argument(help="JSONL input file.", show_default=False)],
    model: Annotated[str | None, Opt(help="Model for records that name none.")] = None,
    template: Annotated[str | None, Opt(help="User message for plain records.")] = None,
    system: Annotated[str | None, Opt(help="System message for plain records.")] = None,
    max_tokens: Annotated[int | None, Opt(help="max_tokens for requests that set none.")] = None,
    prices: Annotated[Path | None, Opt(help="TOML prices file (USD per million tokens).")] = None,
    base_url: Annotated[str | None, Opt(help="API base URL, to match the provider's prices.")] = None,
    compare: Annotated[str | None, Opt(help="Also price the job on these models: A,B,...")] = None,
    config: Annotated[Path | None, Opt(help="Config file (default: ./batchrun.toml if present).")] = None,
    json_: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """Count records, estimate tokens and the cost range per model, without sending anything."""
    from batchrun.config import resolve
    from batchrun.display import format_estimate
    from batchrun.estimate import estimate_file, estimate_report
    from batchrun.pricing import PriceBook

    flags = {"input": input, "model": model, "template": template, "system": system,
             "max_tokens": max_tokens, "prices": prices, "base_url": base_url}
    cfg = resolve(flags, config_path=config, need_key=False)
    book = PriceBook(cfg.prices, cfg.base_url)
    data = estimate_report(asyncio.run(estimate_file(input, cfg.parser())), book, _names(compare),
                           cfg.default_max_output)
    _show(data, json_, format_estimate)


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results JSONL file.", show_default=False)],
    compare: Annotated[str | None, Opt(help="Also price the usage on these models: A,B,...")] = None,
    prices: Annotated[Path | None, Opt(help="TOML prices file (USD per million tokens).")] = None,
    base_url: Annotated[str | None, Opt(help="API base URL, to match the provider's prices.")] = None,
    config: Annotated[Path | None, Opt(help="Config file (default: ./batchrun.toml if present).")] = None,
    json_: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """The per-model summary table of any results file."""
    from batchrun.config import resolve
    from batchrun.display import format_report
    from batchrun.pricing import PriceBook
    from batchrun.report import report as make_report

    cfg = resolve({"prices": prices, "base_url": base_url}, config_path=config, need_key=False)
    data = make_report(results, PriceBook(cfg.prices, cfg.base_url), _names(compare))
    _show(data, json_, format_report)


@app.command()
def models(
    base_url: Annotated[str | None, Opt(help="API base URL (env BATCHRUN_BASE_URL, OPENAI_BASE_URL).")] = None,
    api_key_env: Annotated[str | None, Opt(help="Read the API key from this env variable.")] = None,
    prices: Annotated[bool, Opt("--prices", help="Show each model's prices, their source and context window.")] = False,
    prices_file: Annotated[Path | None, Opt(help="TOML prices file on top of the bundled snapshot.")] = None,
    simulate: Annotated[bool, Opt("--simulate", help="Ask the built-in simulator.")] = False,
    config: Annotated[Path | None, Opt(help="Config file (default: ./batchrun.toml if present).")] = None,
    json_: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """List the endpoint's models (GET {base_url}/models), each marked with whether its price is known."""
    from batchrun.config import resolve
    from batchrun.display import format_models
    from batchrun.job import list_models

    cfg = resolve({"base_url": base_url, "api_key_env": api_key_env, "prices": prices_file,
                   "simulate": simulate}, config_path=config)
    rows = asyncio.run(list_models(cfg))
    _show(rows, json_, lambda r: [format_models(r, prices)])


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
    from batchrun.simulator import SimConfig, Simulator

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


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
