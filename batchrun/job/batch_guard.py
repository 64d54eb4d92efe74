"""Guards for a job whose provider batches may be running: a live run or a --fresh start would
send and pay for their records a second time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchrun.config import RunConfig
from batchrun.errors import JobError
from batchrun.store.state import JobState, checkpoint_path, load_state

if TYPE_CHECKING:
    from batchrun.batch.plan import Plan


def _plan(batch: dict[str, Any]) -> Plan | None:
    """The Batch API plan in a checkpoint's `batch`; the Batch API loads only for a job that has one."""
    if not batch:
        return None
    from batchrun.batch.plan import Plan

    return Plan.from_state(batch)


def refuse_live_while_batches_run(state: JobState, collect: str) -> None:
    """A live run of a job whose batches may exist at the provider would send their records a
    second time: refused, saying the command that collects them (`collect`). A plan that never got
    as far as asking for a batch is dropped instead (a later --batch-api run shards what the live
    run leaves)."""
    plan = _plan(state.batch)
    if plan is None:
        return
    from batchrun.batch.plan import UPLOADED, WRITTEN

    if any(s.phase not in (WRITTEN, UPLOADED) for s in plan.open):
        raise JobError(f"this job has {len(plan.open)} provider batch(es) not yet collected, and a live run "
                       f"would send their records again: collect them with: {collect}")
    state.batch = {}


def refuse_fresh_while_batches_run(cfg: RunConfig) -> None:
    """--fresh would submit and pay again for the records of batches still running at the
    provider (never a shard twice): refused, naming them."""
    if not cfg.fresh:
        return
    try:
        state = load_state(checkpoint_path(cfg.output))
    except JobError:
        return  # an unreadable checkpoint names no batch
    plan = _plan(state.batch) if state is not None else None
    if plan is None:
        return
    from batchrun.batch.plan import CREATING, SUBMITTED

    running = [s.batch_id or s.id for s in plan.shards if s.open and s.phase in (CREATING, SUBMITTED)]
    if running:
        raise JobError(f"--fresh: {len(running)} provider batch(es) of this job may still be running "
                       f"({', '.join(running[:3])}{', ...' if len(running) > 3 else ''}); starting over would "
                       "pay for their records again: collect them with --batch-api, or cancel them at the "
                       f"provider and delete {checkpoint_path(cfg.output)} first")
