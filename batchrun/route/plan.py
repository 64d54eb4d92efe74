"""A record's plan: the models to try in order and why the first was chosen.

The router gives the baseline; the canary, when it takes the record, goes first with the
baseline behind it as its rescue; --fallback-model names follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchrun.records import Record
from batchrun.route.routes import Router

if TYPE_CHECKING:  # a canary's module loads only when [canary] is configured
    from batchrun.route.canary import Canary


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """Models to try in order; `canary`: the first is the canary (one attempt, judged); `once`:
    one attempt only, skipped while its circuit is open (the shadow: a comparison is never worth
    slowing the job for)."""

    chain: tuple[str, ...]
    route: str
    canary: bool = False
    once: bool = False


class Planner:
    """Plans each record at the moment it is sent, so a rollback stops canary traffic at once."""

    def __init__(
        self, router: Router, canary: Canary | None = None, fallbacks: Sequence[str] = (),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.router = router
        self.canary = canary
        self.fallbacks = tuple(fallbacks)
        self.on_change = on_change  # the canary's state changed: save it now

    def plan(self, rec: Record) -> RecordPlan:
        """The plan for one record."""
        base, reason = self.router.route(rec)
        c = self.canary
        if c is not None and c.config.model != base and c.takes(rec.key):
            return RecordPlan(self._chain(c.config.model, base), "canary", True)
        return RecordPlan(self._chain(base), reason)

    def _chain(self, *first: str) -> tuple[str, ...]:
        return (*first, *(m for m in self.fallbacks if m not in first))

    def observe(self, ok: bool, latency_ms: float, hidden_failures: int = 0) -> None:
        """One canary answer (or failure) to judge; `hidden_failures`: upstream attempts a gateway
        retried before it (each a failure the canary's upstream gave, judged as one)."""
        if self.canary is None:
            return
        changed = False
        for _ in range(hidden_failures):
            changed = self.canary.observe(False, latency_ms) or changed
        changed = self.canary.observe(ok, latency_ms) or changed
        if changed and self.on_change is not None:
            self.on_change()

    def roll_back(self, reason: str) -> None:
        """The canary's provider refused it outright (its key, its quota): roll back now."""
        if self.canary is not None and self.canary.roll_back(reason) and self.on_change is not None:
            self.on_change()
