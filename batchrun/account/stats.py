"""Per-model counters and the summary they make. Pure: no I/O, no printing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from batchrun.records import Result

# Latency histogram buckets grow by 2 %: percentiles within 1 % in constant memory.
_RATIO = math.log(1.02)

_INV_RATIO = 1.0 / _RATIO

_log = math.log


@dataclass(slots=True)
class Histogram:
    """Log-bucketed latencies in milliseconds."""

    counts: dict[int, int] = field(default_factory=dict)
    n: int = 0

    def add(self, ms: float) -> None:
        """Count one latency."""
        b = int(_log(ms) * _INV_RATIO) if ms >= 1.0 else 0
        counts = self.counts
        counts[b] = counts.get(b, 0) + 1
        self.n += 1

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0..1), at the middle of its bucket."""
        if not self.n:
            return None
        rank = q * self.n
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return 0.0 if b == 0 else round(math.exp((b + 0.5) * _RATIO), 1)
        return None


@dataclass(slots=True)
class ModelStats:
    """What one model did over the job."""

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    rate_limited: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    canary_cost_usd: float = 0.0  # the part of cost_usd the canary's answers cost
    unpriced: bool = False
    unmetered: int = 0  # answers without usage: while above 0, the model's cost is unknown
    possibly_billed: int = 0  # attempts answered 200 without a readable answer, then retried
    latency: Histogram = field(default_factory=Histogram)

    def to_dict(self) -> dict[str, Any]:
        """The summary JSON's figures for this model."""
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "error_rate": round(self.failed / self.requests, 4) if self.requests else 0.0,
            "attempts": self.attempts,
            "rate_limited": self.rate_limited,
            "fallbacks": self.fallbacks,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": None if self.unpriced or self.unmetered else round(self.cost_usd, 8),
            "unmetered": self.unmetered,
            "possibly_billed": self.possibly_billed,
            "latency_ms": {"p50": self.latency.percentile(0.5), "p95": self.latency.percentile(0.95)},
        }


@dataclass(slots=True)
class JobStats:
    """Counters for the whole job; every result passes through add() exactly once."""

    succeeded: int = 0
    failed: int = 0
    invalid: int = 0
    models: dict[str, ModelStats] = field(default_factory=dict)
    # requests sent for records a clean stop let go, by model: [requests, of which 429s]
    abandoned: dict[str, list[int]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Records with a line in the output."""
        return self.succeeded + self.failed + self.invalid

    def model(self, name: str) -> ModelStats:
        """The counters of a model, made on first use."""
        m = self.models.get(name)
        if m is None:
            m = self.models[name] = ModelStats()
        return m

    def add(self, r: Result) -> None:
        """Count one result."""
        if r.invalid:
            self.invalid += 1
            return
        if r.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        moved = limited = 0
        for fb in r.fallbacks:  # the attempts each model was sent count on its own row
            fell = self.model(fb.from_model)
            fell.fallbacks += 1
            fell.attempts += fb.attempts
            fell.rate_limited += fb.rate_limited
            if fb.attempts:
                fell.requests += 1
            moved += fb.attempts
            limited += fb.rate_limited
        if r.model is None:
            return
        m = self.models.get(r.model) or self.model(r.model)
        m.requests += 1
        m.attempts += r.attempts - moved
        m.rate_limited += r.rate_limited - limited
        m.possibly_billed += r.possibly_billed
        u = r.usage
        m.input_tokens += u.input_tokens
        m.output_tokens += u.output_tokens
        m.cached_tokens += u.cached_tokens
        if r.ok:
            m.succeeded += 1
            if r.latency_ms > 0:
                m.latency.add(r.latency_ms)
        else:
            m.failed += 1
        if r.unmetered:
            m.unmetered += 1
        elif r.cost_usd is not None:
            m.cost_usd += r.cost_usd
            if r.route == "canary" and not r.fallbacks:
                m.canary_cost_usd += r.cost_usd
        elif u.input_tokens or u.output_tokens:
            m.unpriced = True

    @property
    def cost_usd(self) -> float:
        """Sum over priced models."""
        return sum(m.cost_usd for m in self.models.values() if not m.unpriced and not m.unmetered)

    def split_usd(self) -> dict[str, float]:
        """The known cost of main answers and of the canary's (the shadow's is in its own file)."""
        priced = [m for m in self.models.values() if not m.unpriced and not m.unmetered]
        canary = sum(m.canary_cost_usd for m in priced)
        return {"main": round(self.cost_usd - canary, 8), "canary": round(canary, 8), "shadow": 0.0}

    def abandon(self, by_model: dict[str, list[int]]) -> None:
        """Add requests sent for records a clean stop let go (their record goes again next run)."""
        for model, (requests, limited) in by_model.items():
            row = self.abandoned.setdefault(model, [0, 0])
            row[0] += requests
            row[1] += limited

    @property
    def tokens(self) -> tuple[int, int]:
        """Input and output tokens over all models."""
        return (
            sum(m.input_tokens for m in self.models.values()),
            sum(m.output_tokens for m in self.models.values()),
        )

    def to_state(self) -> dict[str, Any]:
        """Everything needed to carry on counting after a resume."""
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "invalid": self.invalid,
            "models": {
                name: {
                    **{k: getattr(m, k) for k in _MODEL_FIELDS},
                    "latency": [[b, c] for b, c in m.latency.counts.items()],
                }
                for name, m in self.models.items()
            },
            "abandoned": self.abandoned,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> JobStats:
        """Rebuild counters saved by to_state()."""
        s = cls(state["succeeded"], state["failed"], state["invalid"])
        for name, d in state["models"].items():
            m = s.model(name)
            for k in _MODEL_FIELDS:
                if k in d:  # a checkpoint from before a field was added keeps its default
                    setattr(m, k, d[k])
            for b, c in d["latency"]:
                m.latency.counts[int(b)] = int(c)
                m.latency.n += int(c)
        s.abandoned = {str(k): [int(v[0]), int(v[1])] for k, v in (state.get("abandoned") or {}).items()}
        return s

_MODEL_FIELDS = (
    "requests", "succeeded", "failed", "attempts", "rate_limited", "fallbacks",
    "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "unpriced", "unmetered", "canary_cost_usd",
    "possibly_billed",
)


def summary(
    stats: JobStats,
    *,
    input_path: str,
    output_path: str,
    total: int,
    complete: bool,
    simulated: bool,
    runs: int,
    elapsed_s: float,
    stopped: str | None,
    rate_limit_wait_s: float = 0.0,
) -> dict[str, Any]:
    """The summary JSON (the README's "Summary JSON")."""
    unpriced = sorted(name for name, m in stats.models.items() if m.unpriced or m.unmetered)
    return {
        "job": {
            "input": input_path,
            "output": output_path,
            "complete": complete,
            "simulated": simulated,
            "runs": runs,
            "elapsed_s": round(elapsed_s, 1),
            "stopped": stopped,
            "rate_limit_wait_s": round(rate_limit_wait_s, 1),
        },
        "records": {
            "total": total,
            "succeeded": stats.succeeded,
            "failed": stats.failed,
            "invalid": stats.invalid,
        },
        "models": {name: m.to_dict() for name, m in sorted(stats.models.items())},
        "total_cost_usd": round(stats.cost_usd, 8),
        "cost_split_usd": stats.split_usd(),
        # 200s without a readable answer, retried: not in the cost (no usage came back) but a
        # provider may have billed them
        "possibly_billed_attempts": sum(m.possibly_billed for m in stats.models.values()),
        "unpriced_models": unpriced,
    }

