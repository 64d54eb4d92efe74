"""What `process --deadline` tells: the split as it stands, the expected finish, and the job's cost
against the same tokens all live and all through batches (each at its own price; None unknown)."""

from __future__ import annotations

from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import JobStats
from batchrun.batch.plan import Plan
from batchrun.records import Usage
from batchrun.route.when import iso_utc


def alternatives(stats: JobStats, prices: PriceBook) -> dict[str, float | None]:
    """The job's answered tokens priced all live and all at the batch price."""
    live: float | None = 0.0
    batch: float | None = 0.0
    for name, m in stats.models.items():
        usage = Usage(m.input_tokens, m.output_tokens)
        lp, bp = prices.price(name), prices.batch_price(name)
        lc, bc = (lp.cost(usage) if lp else None), (bp.cost(usage) if bp else None)
        live = None if live is None or lc is None else live + lc
        batch = None if batch is None or bc is None else batch + bc
    unknown = any(m.unpriced for m in stats.models.values())
    return {"cost_usd": None if unknown else round(stats.cost_usd, 8),
            "all_live_usd": None if live is None else round(live, 8),
            "all_batch_usd": None if batch is None else round(batch, 8)}


def batch_answered(plan: Plan | None) -> int:
    """Lines the job's batches answered (completed or refused one by one), as their counts say."""
    return 0 if plan is None else sum(s.counts.get("completed", 0) + s.counts.get("failed", 0)
                                      for s in plan.shards if s.batch_id is not None)


def deadline_summary(d: dict[str, Any], done: int, complete: bool, ended_at: float,
                     costs: dict[str, float | None], batch: int) -> dict[str, Any]:
    """The summary's and status's `deadline` section from the checkpoint's entry; `batch`: lines
    answered in batches (the rest of `done` was answered live, in this job's runs before too)."""
    return {"deadline": iso_utc(float(d["at"])), "given": d.get("given"), "plan": d.get("plan"),
            "expected_finish": d.get("expected_finish"), "split": d.get("split"),
            "live": max(0, done - batch), "batch": batch,
            "cancelled_batches": len(d.get("cancelled", [])),
            "met": (ended_at <= float(d["at"])) if complete else None, **costs}
