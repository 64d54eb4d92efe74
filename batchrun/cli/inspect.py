"""Commands that look at a job or an endpoint: status, estimate, report, models."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchrun.cli.app import _names, _show, app
from batchrun.cli.options import (
    ApiKeyEnv,
    BaseUrl,
    Compare,
    Config,
    Deadline,
    DeadlineMargin,
    EndpointName,
    InputFile,
    Json,
    MaxTokens,
    Model,
    ModelField,
    Opt,
    Prices,
    Simulate,
    System,
    Template,
)
from batchrun.errors import BatchrunError, ConfigError

if TYPE_CHECKING:
    from batchrun.input.parts import Part


@app.command()
def status(
    input: Annotated[Path, typer.Argument(help="The job's JSONL input file.", show_default=False)],
    output: Annotated[Path | None, Opt("-o", "--output", help="The job's results file, if not the default.")] = None,
    part: Annotated[str | None, Opt("--part", help="The part K/N of the job (its default results file).")] = None,
    json_: Json = False,
) -> None:
    """Show a job's progress from its checkpoint: done, failed, remaining, spend, last run."""
    from batchrun.commands.status import job_status
    from batchrun.config import default_output
    from batchrun.show.deadline import deadline_lines
    from batchrun.show.routing import canary_status
    from batchrun.show.tables import format_status

    try:
        asked = _part(part)
        data = job_status(input, output or default_output(input, asked), None if asked is None else str(asked))
    except BatchrunError as e:
        if json_:  # a script reading stdout gets JSON either way; the sentence still goes to stderr
            _show({"error": e.message}, True, list)
        raise
    _show(data, json_, lambda st: format_status(st) + (canary_status(st["canary"]) if st.get("canary") else [])
          + (deadline_lines(st["deadline"]) if st.get("deadline") else []))


def _part(text: str | None) -> Part | None:
    """--part K/N, or a one-sentence error."""
    from batchrun.input.parts import parse_part

    try:
        return None if text is None else parse_part(text)
    except ValueError:
        raise ConfigError(f"invalid part from --part: expected K/N with 1 <= K <= N, got {text!r}") from None


@app.command()
def estimate(
    input: InputFile,
    model: Model = None,
    model_field: ModelField = None,
    template: Template = None,
    system: System = None,
    max_tokens: MaxTokens = None,
    endpoint: EndpointName = None,
    prices: Prices = None,
    base_url: BaseUrl = None,
    compare: Compare = None,
    config: Config = None,
    json_: Json = False,
    deadline: Deadline = None,
    deadline_margin: DeadlineMargin = None,
    rpm: Annotated[float | None, Opt(help="--deadline: the live limit in requests per minute.")] = None,
    tpm: Annotated[float | None, Opt(help="--deadline: the live limit in tokens per minute.")] = None,
) -> None:
    """Count records, estimate tokens and the cost range per model, without sending anything."""
    from batchrun.commands.deadline_estimate import deadline_plan
    from batchrun.commands.estimate import estimate_file, estimate_report
    from batchrun.config import resolve
    from batchrun.route.routes import Router
    from batchrun.show.deadline import format_deadline
    from batchrun.show.tables import format_estimate

    flags = {"input": input, "model": model, "model_field": model_field, "template": template, "system": system,
             "max_tokens": max_tokens, "endpoint": endpoint, "prices": prices, "base_url": base_url,
             "deadline": deadline, "deadline_margin": deadline_margin, "rpm": rpm, "tpm": tpm}
    cfg = resolve(flags, config_path=config, need_key=False)
    book = cfg.price_book()
    router = Router(cfg.routing.route, cfg.model) if cfg.routing.route else None
    routed = asyncio.run(estimate_file(input, cfg.parser(), (lambda r: router.route(r)[0]) if router else None))
    data = estimate_report(routed, book, _names(compare),
                           cfg.default_max_output)
    if cfg.deadline is not None:
        data["deadline"] = deadline_plan(data, cfg, time.time())
    _show(data, json_, lambda d: format_estimate(d) + (format_deadline(d["deadline"]) if "deadline" in d else []))


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(
        help="A results JSONL file, or several (the parts of one job).", show_default=False)],
    compare: Compare = None,
    prices: Prices = None,
    base_url: BaseUrl = None,
    config: Config = None,
    json_: Json = False,
    html: Annotated[Path | None, Opt("--html", help="Also write a self-contained HTML report here.")] = None,
) -> None:
    """The per-model summary table of any results file; --html adds a report page with charts."""
    from batchrun.commands.report import check_html_path, write_html_report
    from batchrun.commands.report import report as make_report
    from batchrun.config import resolve
    from batchrun.show.tables import format_report

    check_html_path(html, *results)
    cfg = resolve({"prices": prices, "base_url": base_url}, config_path=config, need_key=False)
    book = cfg.price_book()
    if html is None:
        data = make_report(results, book, _names(compare))
    else:  # one reading of the file for both
        data = write_html_report(results, book, html, _names(compare))
    _show(data, json_, format_report)
    if data["job"].get("simulated"):  # read from the job's checkpoint: not real spend or latency
        typer.echo("batchrun: SIMULATED: the job that wrote this file ran on the simulator", err=True)
    if html is not None:
        typer.echo(f"batchrun: HTML report written to {html}", err=True)


@app.command()
def models(
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    show_prices: Annotated[
        bool, Opt("--show-prices", help="Show each model's prices, their source and context window.")
    ] = False,
    prices: Prices = None,
    simulate: Simulate = False,
    config: Config = None,
    json_: Json = False,
) -> None:
    """List the endpoint's models (GET {base_url}/models), each marked with whether its price is known."""
    from batchrun.commands.models import list_models
    from batchrun.config import resolve
    from batchrun.show.tables import format_models

    cfg = resolve({"base_url": base_url, "api_key_env": api_key_env, "prices": prices,
                   "simulate": simulate}, config_path=config)
    rows = asyncio.run(list_models(cfg))
    _show(rows, json_, lambda r: [format_models(r, show_prices)])

