"""The `--max-cost` cap: reserve a request's worst case before sending, settle after. `Budget` is
pure; `BudgetGate` lets a request wait for reservations in flight to settle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from batchrun.errors import BudgetReached, NotSent


@dataclass(slots=True)
class Budget:
    """Spend so far (the whole job, across runs) plus reservations in flight, against a cap."""

    cap_usd: float | None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0

    def try_reserve(self, worst_case_usd: float) -> bool:
        """Reserve a request's worst-case cost; False if that would cross the cap."""
        if self.cap_usd is None:
            return True
        if self.spent_usd + self.reserved_usd + worst_case_usd > self.cap_usd:
            return False
        self.reserved_usd += worst_case_usd
        return True

    def settle(self, reserved_usd: float, actual_usd: float | None) -> None:
        """Replace a reservation by what the request really cost (counted with no cap too: the
        progress line of a routed job, shadow answers included, reads it)."""
        self.spent_usd += actual_usd or 0.0
        if self.cap_usd is not None:
            self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)


    def fits_alone(self, worst_case_usd: float) -> bool:
        """Would this request fit were nothing else in flight?"""
        return self.cap_usd is None or self.spent_usd + worst_case_usd <= self.cap_usd


class BudgetGate:
    """The async face of a Budget: a request that would fit once the requests in flight settle
    waits for them, rather than stopping the job while there is budget left (16 requests in
    flight reserving their worst case can hold most of a small cap for a moment)."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._settled = asyncio.Event()

    async def reserve(self, worst_case_usd: float, stopping: asyncio.Event) -> None:
        """Reserve, waiting on settlements while that could help; BudgetReached when it cannot,
        NotSent when the job stops meanwhile."""
        b = self.budget
        while not b.try_reserve(worst_case_usd):
            if b.reserved_usd <= 0.0 or not b.fits_alone(worst_case_usd):
                raise BudgetReached("the next request would cross --max-cost")
            if stopping.is_set():
                raise NotSent("stopped while waiting for the budget")
            self._settled.clear()
            await self._settled.wait()

    def settle(self, reserved_usd: float, actual_usd: float | None) -> None:
        """Replace a reservation by the real cost and wake who waits for room."""
        self.budget.settle(reserved_usd, actual_usd)
        self._settled.set()
