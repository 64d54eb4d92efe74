"""The parts of a `--deadline` run's rhythm and room: how often it looks, how the input is cut,
and the provider's batch queue (its enqueued-token limit) as the planner counts it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from batchrun.batch.plan import Plan
from batchrun.batch.scheduling.queue import Queues, cost

LOOK_S = (1.0, 60.0)  # between two looks at the batches: a hundredth of the time left, within these
SHARDS = 10  # a job is cut into about this many shards, so a cancel moves a tenth at most


def look_s(seconds_left: float) -> float:
    """How long until the next look: often near the deadline, seldom a day before it."""
    return min(LOOK_S[1], max(LOOK_S[0], seconds_left / 100))


def shard_size(path: Path) -> int:
    """Requests a shard holds: the input's lines over SHARDS."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return max(1, math.ceil(max(1, n) / SHARDS))


def queue_records(queues: Queues, plan: Plan) -> int | None:
    """Records the model's enqueued-token limit lets wait in batches at once (None: not known:
    a refusal teaches it, or --batch-queue-tokens states it)."""
    shards = [s for s in plan.shards if s.tokens > 0]
    if not shards or (limit := queues.of(shards[0]).limit) is None:
        return None
    q = queues.of(shards[0])
    per_token = sum(s.requests for s in shards) / max(1, sum(cost(q, s) for s in shards))
    return max(1, int(limit * per_token))


def queue_lets(queues: Queues, plan: Plan, ids: Sequence[str], now: float) -> set[str]:
    """Of the shards the plan would submit, those their model's batch queue has room for; a
    queue whose limit is not known yet lets the plan's choice through (a refusal fails no line
    and teaches the limit)."""
    admitted = {s.id for s in queues.admit(plan.shards, now)}
    by_id = {s.id: s for s in plan.shards}
    return {sid for sid in ids if sid in admitted or queues.of(by_id[sid]).limit is None}
