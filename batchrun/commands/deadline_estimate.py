"""`estimate --deadline`: the plan for the whole file before anything is sent, from the estimate's
token and cost totals, the live limits given (`--rpm`/`--tpm`, else the cautious prior) and the
Batch API's prior pace (no batch of the job has been seen yet)."""

from __future__ import annotations

from typing import Any

from batchrun.config import RunConfig
from batchrun.route.deadline import (
    PRIOR_BATCH_LPS,
    PRIOR_BATCH_OVERHEAD_S,
    PRIOR_RPM,
    PRIOR_TPM,
    DeadlinePlan,
    Paths,
    live_rate,
    plan,
)
from batchrun.route.when import DEFAULT_MARGIN, deadline_at, iso_utc


def estimate_paths(report: dict[str, Any], cfg: RunConfig) -> Paths:
    """Both paths as far as the estimate knows them: costs at their worst case (every output at
    its cap), unknown where any model's price is."""
    n = max(1, report["lines"]["valid"])
    tokens = sum(m["input_tokens"] + m["max_output_tokens"] for m in report["models"].values()) / n
    live_cost = None if report["unpriced_models"] else report["total_cost_max_usd"]
    batch_cost = None if report["batch_unpriced_models"] else report["total_batch_cost_max_usd"]
    return Paths(live_rps=live_rate(cfg.rpm, cfg.tpm, tokens), batch_lps=PRIOR_BATCH_LPS,
                 batch_overhead_s=PRIOR_BATCH_OVERHEAD_S, live_cost=live_cost, batch_cost=batch_cost,
                 live_known=cfg.rpm is not None or cfg.tpm is not None)


def deadline_plan(report: dict[str, Any], cfg: RunConfig, now: float) -> dict[str, Any]:
    """The plan as JSON-ready data (the estimate's `deadline` section)."""
    assert cfg.deadline is not None
    at = deadline_at(cfg.deadline, now)  # a deadline gone by is refused, as `process` refuses it
    margin = (cfg.deadline_margin or DEFAULT_MARGIN).of(at - now)
    paths = estimate_paths(report, cfg)
    p = plan(report["lines"]["valid"], now, at, margin, paths)
    return {
        "deadline": iso_utc(at), "given": cfg.deadline.text, "in_s": round(at - now, 1), "margin_s": round(margin, 1),
        "records": p.records, "to_batch": p.to_batch, "to_live": p.to_live,
        "expected_finish": iso_utc(p.finish_at) if p.finish_at < float("inf") else None,
        "impossible": p.impossible, "full_speed_s": round(p.full_speed_s, 1), "says": p.says(),
        "planned_on": "full speed" if p.impossible else "cost" if p.on_cost else "time only",
        **_costs(report, p),
        "assumed": {"live_rpm": round(paths.live_rps * 60, 1),
                    "live_from": "--rpm/--tpm" if paths.live_known else
                    f"the prior ({PRIOR_RPM:.0f} RPM, {PRIOR_TPM:.0f} TPM)",
                    "batch_lines_per_s": round(paths.batch_lps, 2), "batch_overhead_s": paths.batch_overhead_s,
                    "batch_from": "the prior (no batch of this job seen yet)"},
    }


def _costs(report: dict[str, Any], p: DeadlinePlan) -> dict[str, Any]:
    """The plan's cost range against the all-live and all-batch ranges; None where a price is unknown."""
    n = max(1, p.records)
    live = None if report["unpriced_models"] else (report["total_cost_min_usd"], report["total_cost_max_usd"])
    batch = None if report["batch_unpriced_models"] else (report["total_batch_cost_min_usd"],
                                                          report["total_batch_cost_max_usd"])

    def mix(i: int) -> float | None:
        if (p.to_live and live is None) or (p.to_batch and batch is None):
            return None
        return round((live[i] if live else 0.0) * p.to_live / n + (batch[i] if batch else 0.0) * p.to_batch / n, 8)

    return {"cost_min_usd": mix(0), "cost_max_usd": mix(1),
            "all_live_cost_usd": list(live) if live else None, "all_batch_cost_usd": list(batch) if batch else None,
            "all_batch_finish": iso_utc(p.all_batch_finish_at) if p.all_batch_finish_at < float("inf") else None}
