"""Baseline and canary side by side: records, success and error rates, latency, and cost per
1,000 answered records (an arm that answered nothing has no such cost: it must not look cheap).

Counted from result lines (so a resume after a crash rebuilds them from the output like every
other figure). A canary record counts as a canary success only when the canary answered it; one
the baseline had to rescue is a canary failure, though the record itself succeeded, and what
its rescue cost is the baseline model's cost, not the canary's: it is left out of both arms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batchrun.account.stats import Histogram
from batchrun.records import Result


@dataclass(slots=True)
class Arm:
    """One side of the comparison."""

    records: int = 0
    succeeded: int = 0
    failed: int = 0
    cost_usd: float = 0.0  # what this arm's own answers cost
    latency: Histogram = field(default_factory=Histogram)
    unpriced: int = 0  # answers of this arm whose cost is unknown

    def add(self, ok: bool, latency_ms: float, cost: float | None) -> None:
        self.records += 1
        if ok:
            self.succeeded += 1
            self.latency.add(latency_ms)
            if cost is None:
                self.unpriced += 1
            else:
                self.cost_usd += cost
        else:
            self.failed += 1

    def figures(self) -> dict[str, Any]:
        """The summary JSON's view of this arm."""
        n = self.records
        return {
            "records": n, "succeeded": self.succeeded, "failed": self.failed,
            "success_rate": round(self.succeeded / n, 4) if n else None,
            "error_rate": round(self.failed / n, 4) if n else None,
            "p50_ms": self.latency.percentile(0.5), "p95_ms": self.latency.percentile(0.95),
            "answered": self.succeeded, "cost_usd": None if self.unpriced else round(self.cost_usd, 8),
            "cost_per_1k_answered_usd": (round(self.cost_usd / self.succeeded * 1000, 6)
                                         if self.succeeded and not self.unpriced else None),
        }

    def to_state(self) -> list[Any]:
        return [self.records, self.succeeded, self.failed, self.cost_usd,
                {str(k): v for k, v in self.latency.counts.items()}, self.unpriced]

    @classmethod
    def from_state(cls, saved: Any) -> Arm:
        try:
            records, succeeded, failed, cost, counts, *more = saved
            hist = Histogram({int(k): int(v) for k, v in counts.items()}, sum(int(v) for v in counts.values()))
            return cls(int(records), int(succeeded), int(failed), float(cost), hist, int(more[0]) if more else 0)
        except (TypeError, ValueError, AttributeError):
            return cls()


@dataclass(slots=True)
class Arms:
    """The two arms of a canary."""

    baseline: Arm = field(default_factory=Arm)
    canary: Arm = field(default_factory=Arm)

    def add(self, r: Result) -> None:
        """Count a result line (invalid lines and jobs with no canary are not routed: skipped)."""
        if r.route is None:
            return
        if r.route == "canary":
            answered_by_canary = r.ok and not r.fallbacks
            self.canary.add(answered_by_canary, r.latency_ms, r.cost_usd if answered_by_canary else 0.0)
        else:
            self.baseline.add(r.ok, r.latency_ms, r.cost_usd)

    def to_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_state(), "canary": self.canary.to_state()}

    @classmethod
    def from_state(cls, saved: Any) -> Arms:
        if not isinstance(saved, dict):
            return cls()
        return cls(Arm.from_state(saved.get("baseline")), Arm.from_state(saved.get("canary")))
