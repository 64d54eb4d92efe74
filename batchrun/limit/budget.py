"""The `--max-cost` cap: reserve a request's worst case before sending, settle after. Pure."""

from __future__ import annotations

from dataclasses import dataclass


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
        """Replace a reservation by what the request really cost."""
        if self.cap_usd is None:
            return
        self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
        self.spent_usd += actual_usd or 0.0

