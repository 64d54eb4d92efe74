"""The Batch API job's scheduler wired from the run's options: the queue limits the user states
(`--batch-queue-tokens`, or a provider's `batch_queue_tokens`), the batch prices `--max-cost`
reserves at, and what a stop for the budget says."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from batchrun.account.pricing import PriceBook
from batchrun.batch.output import JobOutput
from batchrun.batch.plan import Plan
from batchrun.batch.scheduling.queue import Queues, cost
from batchrun.batch.scheduling.reserve import Reserve
from batchrun.batch.scheduling.schedule import Scheduler
from batchrun.batch.submit import Submitter
from batchrun.config import RunConfig
from batchrun.route.providers import Targets
from batchrun.store.state import JobState

PROMPT_MARGIN = 1.25


def stated_limits(cfg: RunConfig) -> Callable[[str], int | None]:
    """A model's stated queue limit: its provider's `batch_queue_tokens`, else --batch-queue-tokens."""
    providers = {p.name: p for p in cfg.routing.providers}
    targets = Targets(providers)

    def stated(model: str) -> int | None:
        p = providers.get(targets(model).provider or "")
        n = p.batch_queue_tokens if p is not None else None
        return int(n) if n is not None else cfg.batch_queue_tokens

    return stated


def scheduler(cfg: RunConfig, plan: Plan, submitter: Submitter, directory: Path, out: JobOutput,
              notice: Callable[[str], None], prices: PriceBook, state: JobState) -> Scheduler:
    """The run's scheduler: the plan's queues, the budget at batch prices, the state's spend."""
    queues = Queues(plan.queues, stated_limits(cfg))

    # the prompt with the live path's margin over the estimate (the server's count may run higher)
    reserve = Reserve(cfg.max_cost, lambda s: prices.batch_price(s.model),
                      lambda s: math.ceil(cost(queues.of(s), s) * PROMPT_MARGIN))
    return Scheduler(plan, queues, reserve, submitter, directory, out.save, notice, lambda: state.stats.cost_usd,
                     out.write)


def budget_stop(sched: Scheduler, cap: float | None) -> str:
    """What a run stopped by --max-cost says: what is left, what it would cost at most."""
    left = sched.budget_blocked
    worst = sum(sched.reserve.worst(s) or 0.0 for s in left)
    return (f"--max-cost {cap:g}: {len(left)} shard(s) ({sum(s.requests for s in left)} request(s), up to "
            f"${worst:.4f} at the batch price with output at its caps) are not submitted, the budget cannot cover "
            "them; nothing is lost: run the same command again with a higher --max-cost to go on")


def warn_prices(plan: Plan, prices: PriceBook, warn: Callable[[str], None], cap: float | None) -> None:
    """A model with no batch price: its cost is unknown, and --max-cost cannot cap it."""
    for model in sorted({s.model for s in plan.open}):
        if prices.batch_price(model) is None:
            also = "; --max-cost cannot cap it" if cap is not None else ""
            warn(f"no Batch API price is known for model {model!r}: its cost is shown as unknown{also} (add "
                 "batch_input and batch_output for it with --prices)")
