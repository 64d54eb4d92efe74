"""A job's batches as the provider sees them, for `batchrun batches`: found by the metadata every
batch of the job carries (`batchrun_job`), listed with their state, counts, age and the tokens
they hold of the model's queue; and cancelled on request (what a batch answered before the
cancel lands is kept: the next run collects it as it would an expired batch's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchrun.batch.api import BatchApi
from batchrun.batch.plan import Plan
from batchrun.batch.scheduling.queue import Queues, cost
from batchrun.batch.submit import CLOCK_SLACK_S

RUNNING = ("validating", "in_progress", "finalizing")


async def job_batches(apis: Mapping[str | None, BatchApi], plan: Plan, now: float) -> list[dict[str, Any]]:
    """Every batch of the job at each provider it uses, oldest first."""
    shards = {s.id: s for s in plan.shards}
    queues = Queues(plan.queues)
    since = min((s.creating_at for s in plan.shards if s.creating_at), default=0.0) - CLOCK_SLACK_S
    rows: list[dict[str, Any]] = []
    for provider in sorted({s.provider for s in plan.shards}, key=lambda p: p or ""):
        async for b in apis[provider].batches():
            created = b.get("created_at") if isinstance(b.get("created_at"), int | float) else None
            meta: dict[str, Any] = b["metadata"] if isinstance(b.get("metadata"), dict) else {}
            if meta.get("batchrun_job") == plan.job_id:
                shard = shards.get(str(meta.get("batchrun_shard")))
                status = str(b.get("status"))
                counts = b["request_counts"] if isinstance(b.get("request_counts"), dict) else {}
                held = cost(queues.of(shard), shard) if shard is not None and status in RUNNING else 0
                rows.append({"batch_id": b.get("id"), "shard": meta.get("batchrun_shard"), "provider": provider,
                             "model": shard.model if shard else None, "status": status, "request_counts": counts,
                             "age_s": None if created is None else round(max(0.0, now - created)),
                             "tokens_queued": held, "errors": _first_error(b)})
            elif created is not None and created < since:
                break  # newest first: older batches cannot be this job's
    return sorted(reversed(rows), key=lambda r: -(r["age_s"] or 0))  # listed newest first


async def cancel_running(apis: Mapping[str | None, BatchApi], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cancel each listed batch still running; the rows of those cancelled, with their new state."""
    done = []
    for r in rows:
        if r["status"] in RUNNING:
            b = await apis[r["provider"]].cancel(str(r["batch_id"]))
            done.append({**r, "status": str(b.get("status"))})
    return done


def _first_error(b: dict[str, Any]) -> str | None:
    errors = b.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return f"{data[0].get('code')}: {data[0].get('message')}"
    return None

