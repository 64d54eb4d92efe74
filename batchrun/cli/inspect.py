"""Commands that look at a job or an endpoint: status, estimate, report, models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from batchrun.cli.app import Opt, _names, _show, app


@app.command()
def status(
    input: Annotated[Path, typer.Argument(help="The job's JSONL input file.", show_default=False)],
    output: Annotated[Path | None, Opt("-o", "--output", help="The job's results file, if not the default.")] = None,
    json_: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """Show a job's progress from its checkpoint: done, failed, remaining, spend, last run."""
    from batchrun.config import default_output
    from batchrun.run.status import job_status
    from batchrun.show.tables import format_status

    _show(job_status(input, output or default_output(input)), json_, format_status)


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
    from batchrun.account.pricing import PriceBook
    from batchrun.config import resolve
    from batchrun.run.estimate import estimate_file, estimate_report
    from batchrun.show.tables import format_estimate

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
    from batchrun.account.pricing import PriceBook
    from batchrun.config import resolve
    from batchrun.run.report import report as make_report
    from batchrun.show.tables import format_report

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
    from batchrun.run.models import list_models
    from batchrun.show.tables import format_models

    cfg = resolve({"base_url": base_url, "api_key_env": api_key_env, "prices": prices_file,
                   "simulate": simulate}, config_path=config)
    rows = asyncio.run(list_models(cfg))
    _show(rows, json_, lambda r: [format_models(r, prices)])

