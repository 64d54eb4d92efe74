"""The end of a Batch API run on screen, around the summary the lifecycle shows: unknown batch
prices before it, what to do next after it."""

from __future__ import annotations

from typing import Any

from batchrun.batch.plan import Plan
from batchrun.config import RunConfig
from batchrun.errors import StopReason
from batchrun.job.resume import resume_command
from batchrun.show.console import Display


def warn_batch_prices(display: Display, summ: dict[str, Any]) -> None:
    """A model whose batch price is unknown: its cost is shown as unknown."""
    for model in summ["unpriced_models"]:
        display.warn(f"no batch price is known for model {model!r}: its cost is shown as unknown")


def next_step(cfg: RunConfig, display: Display, plan: Plan, stopped: StopReason | None) -> None:
    """The next step when batches remain."""
    running = len(plan.open)
    if stopped is StopReason.BATCHES_RUNNING:
        waiting = sum(1 for s in plan.open if s.batch_id is None)
        also = f" and {waiting} shard(s) waiting for the provider's batch queue" if waiting else ""
        display.hint(f"--no-wait: {running - waiting} batch(es) still running at the provider{also}; collect them "
                       f"later with: {resume_command(cfg.api_key)} (exit 75 until all are collected)")
    elif stopped is not None and running:
        at_provider = sum(1 for s in plan.open if s.batch_id)
        unsent = running - at_provider
        parts = [f"{at_provider} batch(es) still running at the provider"] if at_provider else []
        parts += [f"{unsent} shard(s) not yet submitted"] if unsent else []
        display.hint(f"stopped with {' and '.join(parts)}: go on with: {resume_command(cfg.api_key)}")
