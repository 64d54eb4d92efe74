"""`--max-cost` for a Batch API job, pure: a shard is submitted only when the budget covers its
worst case (its prompt tokens as the server counts them, at the batch price, and every request's
output at its cap) on top of what is spent and what the batches still running may cost. A
collected batch settles to its real cost (the spent figure), freeing the rest of its reserve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batchrun.account.prices import Price
from batchrun.batch.plan import Shard
from batchrun.batch.scheduling.queue import holds
from batchrun.records import Usage


@dataclass(frozen=True, slots=True)
class Reserve:
    """The cap, and how to find a shard's batch price and its prompt tokens as the server counts them."""

    cap_usd: float | None
    price: Callable[[Shard], Price | None]
    tokens: Callable[[Shard], int]

    def worst(self, shard: Shard) -> float | None:
        """The most a shard's batch may cost; None when its price is unknown."""
        p = self.price(shard)
        return None if p is None else p.cost(Usage(self.tokens(shard), shard.out_cap))

    def reserved(self, shards: list[Shard]) -> float:
        """What the batches still running may cost at most."""
        return sum(self.worst(s) or 0.0 for s in shards if holds(s))

    def covers(self, shard: Shard, spent: float, reserved: float) -> bool:
        """Whether the budget covers the shard's worst case; with no cap, always. An unpriced
        shard is covered (its cost cannot be known; a warning says so before the run)."""
        if self.cap_usd is None:
            return True
        w = self.worst(shard)
        return w is None or spent + reserved + w <= self.cap_usd
