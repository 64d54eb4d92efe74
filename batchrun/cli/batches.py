"""`batchrun batches`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from batchrun.cli.app import _show, app
from batchrun.cli.options import ApiKeyEnv, BaseUrl, Config, Flag, Json, Opt


@app.command()
def batches(
    input: Annotated[Path, typer.Argument(help="The job's JSONL input file.", show_default=False)],
    output: Annotated[Path | None, Opt("-o", "--output", help="The job's results file, if not the default.")] = None,
    cancel: Annotated[bool, Flag("--cancel", help="Cancel the job's running batches (what they answered is "
                                                  "kept; the next run collects it).")] = False,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    config: Config = None,
    json_: Json = False,
) -> None:
    """List a --batch-api job's batches at the provider: state, counts, age, tokens queued."""
    from batchrun.commands.batch_list import list_batches
    from batchrun.config import resolve
    from batchrun.show.batches import format_batches

    flags = {"input": input, "output": output, "base_url": base_url, "api_key_env": api_key_env}
    cfg = resolve(flags, config_path=config)
    if base_url is None and (job_url := _job_base_url(cfg.output)) not in (None, cfg.base_url):
        cfg = resolve({**flags, "base_url": job_url}, config_path=config)  # where the job sent its batches
    _show(asyncio.run(list_batches(cfg, cancel)), json_, format_batches)


def _job_base_url(output: Path) -> str | None:
    """The base URL the job ran against, from its checkpoint, where it is kept whole (a URL with a
    password is kept masked: then --base-url must say it)."""
    from batchrun.store.state import checkpoint_path, load_state

    state = load_state(checkpoint_path(output))
    url = state.identity.get("base_url") if state is not None else None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) and "***@" not in url else None
