"""Each provider's figures: every HTTP request its server received and what became of it, and
what it cost, split into main answers, the canary's and the shadow's. Pure: no I/O.

A provider's `requests` counts attempts, not records: retries, 429s, a canary's one attempt
before its rescue, shadow requests, and requests sent for records a clean stop let go. So
`requests = succeeded + failed + rate_limited`, where `succeeded` is the requests answered,
`failed` the ones that failed (an error status, a reset, a timeout, an unreadable body) and
`rate_limited` the 429s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchrun.account.stats import JobStats


@dataclass(frozen=True, slots=True)
class Traffic:
    """What one model was sent and what it cost: the job's own answers or the shadow's."""

    model: str
    requests: int
    answered: int
    rate_limited: int
    cost_usd: float | None  # None: partly unknown (no price, or answers without usage)
    canary_usd: float = 0.0  # the part of cost_usd the canary's answers cost
    shadow: bool = False


def job_traffic(stats: JobStats) -> list[Traffic]:
    """The main output's traffic by model, with the requests a clean stop let go."""
    out = []
    for name in {*stats.models, *stats.abandoned}:
        m = stats.models.get(name)
        lost = stats.abandoned.get(name, [0, 0])
        if m is None:
            out.append(Traffic(name, lost[0], 0, lost[1], 0.0))
            continue
        known = not m.unpriced and not m.unmetered
        out.append(Traffic(name, m.attempts + lost[0], m.succeeded, m.rate_limited + lost[1],
                           m.cost_usd if known else None, m.canary_cost_usd if known else 0.0))
    return out


def provider_rows(traffic: list[Traffic], provider_of: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """The summary's `providers`: a row per provider, its columns adding up."""
    rows: dict[str, dict[str, Any]] = {}
    for t in sorted(traffic, key=lambda t: t.model):
        row = rows.setdefault(provider_of(t.model), {
            "requests": 0, "succeeded": 0, "failed": 0, "rate_limited": 0, "cost_usd": 0.0,
            "cost_split_usd": {"main": 0.0, "canary": 0.0, "shadow": 0.0}})
        # a batch's answers are no HTTP requests of their own: never fewer requests than answers
        failed = max(0, t.requests - t.answered - t.rate_limited)
        row["requests"] += t.answered + t.rate_limited + failed
        row["succeeded"] += t.answered
        row["failed"] += failed
        row["rate_limited"] += t.rate_limited
        split = row["cost_split_usd"]
        known = t.cost_usd or 0.0
        if t.shadow:
            split["shadow"] = round(split["shadow"] + known, 8)
        else:
            split["main"] = round(split["main"] + known - t.canary_usd, 8)
            split["canary"] = round(split["canary"] + t.canary_usd, 8)
        cost = row["cost_usd"]
        row["cost_usd"] = None if cost is None or t.cost_usd is None else round(cost + t.cost_usd, 8)
    return rows
