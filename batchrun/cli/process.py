"""`batchrun process`.

No `from __future__ import annotations` here: typer reads the ~40 options' annotations at every
start, and evaluating them from strings (twice each) cost ~5 ms of each run's CPU.
"""

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchrun.cli.app import _early_signal, app

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchrun.job.outcome import Outcome
    from batchrun.secret import ApiKey
    from batchrun.show.console import Display
from batchrun.cli.options import (
    ApiKeyEnv,
    BaseUrl,
    BatchExpired,
    BatchQueueTokens,
    BatchSize,
    ChunkLong,
    Config,
    Deadline,
    DeadlineMargin,
    EndpointName,
    Flag,
    InputFile,
    MaxTokens,
    MaxWait,
    Model,
    ModelField,
    NotifyUrl,
    NoWait,
    Opt,
    OutputFile,
    PartOption,
    PartsOption,
    Prices,
    SharedLimits,
    SharedLimitsRequired,
    Simulate,
    System,
    Template,
)


@app.command()
def process(
    input: InputFile,
    output: OutputFile = None,
    model: Model = None,
    model_field: ModelField = None,
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
    max_wait: MaxWait = None,
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
    batch_size: BatchSize = None, batch_expired: BatchExpired = None,
    shared_limits: SharedLimits = None, shared_limits_required: SharedLimitsRequired = False,
    part: PartOption = None, parts: PartsOption = None,
    no_wait: NoWait = False,
    deadline: Deadline = None, deadline_margin: DeadlineMargin = None,
    batch_queue_tokens: BatchQueueTokens = None,
    notify: NotifyUrl = None, chunk_long: ChunkLong = False,
) -> None:
    """Send every record of INPUT to the API and write one result line per record."""
    _process(dict(locals()))


def _process(flags: dict[str, Any]) -> None:
    from batchrun.commands.preflight import check_paths, fit_open_files, input_hints
    from batchrun.config import resolve
    from batchrun.errors import run_exit_code
    from batchrun.job.alerts import run_notified
    from batchrun.job.job import run_job
    from batchrun.show.console import Display, DisplayMode

    config_path = flags.pop("config")
    html_report = flags.pop("html_report")
    flags["fallback_model"] = tuple(flags["fallback_model"] or ())
    cfg = resolve(flags, config_path=config_path)
    check_paths(cfg, html_report)
    if html_report is not None:  # the report's modules load only when one is asked for
        from batchrun.commands.report import check_html_path

        check_html_path(html_report, cfg.input, cfg.output)
    display = Display(DisplayMode.QUIET if cfg.quiet else None, cfg.log_file,
                      plain_interval_s=cfg.progress_interval)
    cfg = fit_open_files(cfg, display.warn)
    input_hints(cfg, display.warn)
    # Until the pipeline installs its own handlers (a clean drain), SIGTERM or SIGHUP end us
    # quietly: nothing has been sent yet.
    signal.signal(signal.SIGTERM, _early_signal)
    signal.signal(signal.SIGHUP, _early_signal)
    try:
        outcome = _resumable(lambda: asyncio.run(run_notified(
            cfg, display, _deadline_job() if cfg.deadline is not None else run_job)), cfg.api_key)
        if html_report is not None:
            _html_report(cfg.output, html_report, display)
    finally:
        display.close()
    raise typer.Exit(run_exit_code(outcome.stopped, outcome.all_ok))


def _deadline_job() -> Any:
    """--deadline's job; loaded only then, as it brings the Batch API with it."""
    from batchrun.job.batch_api.deadline import run_deadline_job

    return run_deadline_job


def _resumable(run: "Callable[[], Outcome]", key: "ApiKey") -> "Outcome":
    """A stop raised as an error (the job busy, a write failing) says the command that goes on."""
    from batchrun.errors import BatchrunError, ExitCode
    from batchrun.job.resume import resume_command

    try:
        return run()
    except BatchrunError as e:
        if e.exit_code in (ExitCode.STOPPED, ExitCode.CANT_WRITE, ExitCode.TRY_LATER):
            e.message = f"{e.message}; to go on, run: {resume_command(key)}"
        raise


def _html_report(results: Path, out: Path, display: "Display") -> None:
    """The run's HTML report; failing to write it is a warning, the run's outcome stands."""
    from batchrun.account.pricing import PriceBook
    from batchrun.commands.report import write_html_report
    from batchrun.errors import BatchrunError

    try:
        write_html_report(results, PriceBook({}), out)
    except BatchrunError as e:
        display.warn(e.message)
    else:
        display.notice(f"HTML report written to {out}")
