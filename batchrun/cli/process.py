"""`batchrun process`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchrun.cli.app import _early_signal, app

if TYPE_CHECKING:
    from batchrun.show.console import Display
from batchrun.cli.options import (
    ApiKeyEnv,
    BaseUrl,
    Config,
    EndpointName,
    Flag,
    InputFile,
    MaxTokens,
    Model,
    Opt,
    OutputFile,
    Prices,
    Simulate,
    System,
    Template,
)


@app.command()
def process(
    input: InputFile,
    output: OutputFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    concurrency: Annotated[int | None, Opt(help="Requests in flight at most (default: 16).")] = None,
    rpm: Annotated[float | None, Opt(help="Requests per minute (default: learned).")] = None,
    tpm: Annotated[float | None, Opt(help="Tokens per minute (default: learned).")] = None,
    max_attempts: Annotated[
        int | None, Opt(help="Failed attempts per record before it fails; a 429 is not one (default: 6).")
    ] = None,
    timeout: Annotated[
        float | None, Opt(help="Longest wait in seconds for the next byte of an answer (default: 120).")
    ] = None,
    max_request_time: Annotated[
        float | None, Opt(help="Longest one attempt may take, in seconds (default: 1800).")
    ] = None,
    max_wait: Annotated[
        float | None, Opt(help="Stop the job (exit 75) when the server asks to wait longer than this (seconds).")
    ] = None,
    max_cost: Annotated[float | None, Opt(help="Hard cap in USD for the whole job.")] = None,
    prices: Prices = None,
    template: Template = None,
    system: System = None,
    max_tokens: MaxTokens = None,
    endpoint: EndpointName = None,
    fallback_model: Annotated[list[str] | None, Opt(help="Model to fall back to (repeatable).")] = None,
    simulate: Simulate = False,
    summary_json: Annotated[Path | None, Opt(help="Write the summary JSON here.")] = None,
    html_report: Annotated[Path | None, Opt(help="At the end, write the HTML run report here.")] = None,
    fresh: Annotated[bool, Flag("--fresh", help="Start the job over (old output moved aside).")] = False,
    retry_failed: Annotated[
        bool, Flag("--retry-failed", help="Send again the records whose lines are errors.")
    ] = False,
    config: Config = None,
    quiet: Annotated[bool, Flag("--quiet", "-q", help="Summary only.")] = False,
    drain_timeout: Annotated[
        float | None, Opt(help="Seconds to let in-flight requests finish on a stop (default: 30).")
    ] = None,
    max_line_bytes: Annotated[int | None, Opt(help="Longer lines are bad lines (default: 16 MiB).")] = None,
    log_file: Annotated[Path | None, Opt(help="Append progress and messages to this file.")] = None,
    progress_interval: Annotated[
        float | None, Opt(help="Seconds between plain progress lines off a terminal (default: 10).")
    ] = None,
    batch_api: Annotated[
        bool, Flag("--batch-api", help="Run the file through the provider's Batch API (/v1/files + /v1/batches).")
    ] = False,
    batch_size: Annotated[int | None, Opt(help="--batch-api: requests per batch at most (default: 50000).")] = None,
    batch_expired: Annotated[
        str | None, Opt(help="--batch-api: unanswered lines of an expired batch: resubmit (default) or live.")
    ] = None,
    no_wait: Annotated[
        bool, Flag("--no-wait", help="--batch-api: submit, collect what is finished, exit 75 while batches run.")
    ] = False,
) -> None:
    """Send every record of INPUT to the API and write one result line per record."""
    _process(dict(locals()))


def _process(flags: dict[str, Any]) -> None:
    from batchrun.config import resolve
    from batchrun.errors import run_exit_code
    from batchrun.run.job import run_job
    from batchrun.run.preflight import check_paths, fit_open_files
    from batchrun.show.console import Display, DisplayMode

    config_path = flags.pop("config")
    html_report = flags.pop("html_report")
    flags["fallback_model"] = tuple(flags["fallback_model"] or ())
    cfg = resolve(flags, config_path=config_path)
    check_paths(cfg, html_report)
    if html_report is not None:  # the report's modules load only when one is asked for
        from batchrun.run.report import check_html_path

        check_html_path(html_report, cfg.input, cfg.output)
    display = Display(DisplayMode.QUIET if cfg.quiet else None, cfg.log_file,
                      plain_interval_s=cfg.progress_interval)
    cfg = fit_open_files(cfg, display.warn)
    # Until the pipeline installs its own handlers (a clean drain), SIGTERM or SIGHUP end us
    # quietly: nothing has been sent yet.
    signal.signal(signal.SIGTERM, _early_signal)
    signal.signal(signal.SIGHUP, _early_signal)
    try:
        outcome = asyncio.run(run_job(cfg, display))
        if html_report is not None:
            _html_report(cfg.output, html_report, display)
    finally:
        display.close()
    raise typer.Exit(run_exit_code(outcome.stopped, outcome.all_ok))


def _html_report(results: Path, out: Path, display: Display) -> None:
    """The run's HTML report; failing to write it is a warning, the run's outcome stands."""
    from batchrun.account.pricing import PriceBook
    from batchrun.errors import BatchrunError
    from batchrun.run.report import write_html_report

    try:
        write_html_report(results, PriceBook({}), out)
    except BatchrunError as e:
        display.warn(e.message)
    else:
        display.notice(f"HTML report written to {out}")
