"""`batchrun batches`: a --batch-api job's batches at the provider, read from its checkpoint's
plan, and `--cancel` for the running ones."""

from __future__ import annotations

import time
from typing import Any

from batchrun.batch.api import BatchApi
from batchrun.batch.manage import cancel_running, job_batches
from batchrun.batch.plan import Plan
from batchrun.config import RunConfig
from batchrun.errors import JobError
from batchrun.job.connect import endpoint
from batchrun.send.session import make_session
from batchrun.store.state import checkpoint_path, load_state


async def list_batches(cfg: RunConfig, cancel: bool) -> dict[str, Any]:
    """The job's batches (and, with `cancel`, the ones cancelled now)."""
    ckpt = checkpoint_path(cfg.output)
    state = load_state(ckpt)
    plan = Plan.from_state(state.batch) if state is not None else None
    if plan is None:
        raise JobError(f"no --batch-api job for {cfg.input}: {ckpt} holds no batch plan (is -o the job's "
                       "results file?)")
    async with endpoint(cfg) as (url, key), make_session(2) as session:
        apis = {None: BatchApi(session, url, key, cfg.timeout)} | {
            p.name: BatchApi(session, p.base_url, p.api_key, cfg.timeout) for p in cfg.routing.providers}
        rows = await job_batches(apis, plan, time.time())
        cancelled = await cancel_running(apis, rows) if cancel else []
    return {"input": str(cfg.input), "job_id": plan.job_id, "batches": rows, "cancelled": cancelled}
