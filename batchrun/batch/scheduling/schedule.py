"""Which shards go to the provider, and when: the queue (batch/scheduling/queue.py) and the budget
(batch/scheduling/reserve.py) applied to a plan, each decision saved before the next step. A batch refused
for the enqueued-token limit is not a settled batch: its shard goes back to waiting (its
uploaded file kept), no line is written for it, and the queue learns from the refusal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchrun.batch.plan import CREATING, SUBMITTED, UPLOADED, WRITTEN, Plan, Shard
from batchrun.batch.scheduling.fit import fail_shard, split_shard
from batchrun.batch.scheduling.queue import Queues, cost, holds, key, queue_refusal, waiting
from batchrun.batch.scheduling.reserve import Reserve
from batchrun.batch.submit import Submitter
from batchrun.records import Result
from batchrun.send.notify import BATCH_QUEUE_REFUSED, notify

_VALIDATING = (None, "validating")
_RUNNING = ("in_progress", "finalizing")
_PASSED = (*_RUNNING, "completed", "expired")  # states only a validated batch reaches


@dataclass
class Scheduler:
    """Submits what the queue and the budget let through; learns from what the provider says."""

    plan: Plan
    queues: Queues
    reserve: Reserve
    submitter: Submitter
    directory: Path
    save: Callable[[], None]
    notice: Callable[[str], None]
    spent: Callable[[], float]  # dollars spent so far (collected batches at their real cost)
    write: Callable[[Result], None]  # a result line into the output
    clock: Callable[[], float] = time.time
    budget_blocked: list[Shard] = field(default_factory=list)  # waiting shards the budget cannot cover
    # shard id -> tokens: our batches past validation and running as of the last poll, or passed in
    # this one (a poll finds a quick batch already ended: it held the queue since the poll before)
    _accepted: dict[str, int] = field(default_factory=dict)

    def begin_poll(self) -> None:
        """A round of polls starts: note which accepted batches are running, and let slow start
        grow to what the last round saw running at once (only batches seen running together count:
        a quick batch that came and went between polls may never have shared the queue)."""
        self._accepted = {s.id: cost(self.queues.of(s), s) for s in self.plan.open
                          if holds(s) and s.status not in _VALIDATING}
        together: dict[str, tuple[Shard, int]] = {}
        for s in self.plan.open:
            if s.phase == SUBMITTED and s.status in _RUNNING:
                first, n = together.get(key(s), (s, 0))
                together[key(s)] = (first, n + cost(self.queues.of(s), s))
        for first, n in together.values():
            self.queues.accepted(first, n)

    def _accepted_tokens(self, k: str) -> int:
        return sum(t for sid, t in self._accepted.items() if key(self._shard(sid)) == k)

    def _shard(self, sid: str) -> Shard:
        return next(s for s in self.plan.shards if s.id == sid)

    async def submit_round(self) -> int:
        """Submit every shard that may go now; how many were."""
        n = 0
        for s in [s for s in self.plan.open if s.phase == CREATING]:  # resumed: found at the provider or made
            await self._submit(s)
            n += 1
        self.split_oversized()
        for s in [s for s in self.plan.open if s.phase == WRITTEN]:  # files go up ahead: no limit on them
            await self.submitter.upload(s)
        for s in self._ready():
            await self._submit(s)
            n += 1
        return n

    def _ready(self) -> list[Shard]:
        """The waiting shards the queue lets in and the budget covers; the others it let in are
        noted in `budget_blocked`."""
        self.budget_blocked, ready = [], []
        reserved, spent = self.reserve.reserved(self.plan.shards), self.spent()
        for s in self.queues.admit(self.plan.shards, self.clock()):
            if self.reserve.covers(s, spent, reserved):
                reserved += self.reserve.worst(s) or 0.0
                ready.append(s)
            else:
                self.budget_blocked.append(s)
        return ready

    async def _submit(self, s: Shard) -> None:
        again = f" (again: {len(s.refused)} earlier batch(es) refused for the queue)" if s.refused else ""
        s.note = None  # no longer waiting (saved with the next step)
        await self.submitter.submit(s)
        self.notice(f"batch {s.id}: {s.requests} request(s) to {s.model} submitted as {s.batch_id}{again}")

    def split_oversized(self) -> None:
        """Split each waiting shard too big for its whole queue (a single request over it fails its line)."""
        for s in [s for s in self.plan.open if waiting(s)]:
            q = self.queues.of(s)
            if s.requests == 1 and q.limit is not None and cost(q, s) > q.limit:
                fail_shard(s, self.directory, self.write, q.limit)
                self.save()
                continue
            pieces = self.queues.pieces(s)
            if pieces > 1:
                new = split_shard(self.plan, s, self.directory, pieces)
                self.save()
                self.notice(f"batch {s.id}: ~{cost(q, s):,} tokens, more than {s.model}'s whole batch queue "
                            f"({q.limit or 0:,} or less): split into {len(new)} shards")

    def observe(self, s: Shard, before: str | None, batch: dict[str, Any]) -> bool:
        """A polled batch's news; True when it was refused for the queue (the shard waits again,
        saved; nothing to collect)."""
        status = str(batch.get("status"))
        if before in _VALIDATING and status in _PASSED:
            self._accepted[s.id] = cost(self.queues.of(s), s)
            self.queues.accepted(s, cost(self.queues.of(s), s))  # at least itself
        if status != "failed" or (message := queue_refusal(batch)) is None:
            return False
        assert s.batch_id is not None
        s.refused.append(s.batch_id)
        s.phase, s.batch_id, s.status, s.counts, s.creating_at = UPLOADED, None, None, {}, None
        self.queues.refused(s, message, self._accepted_tokens(key(s)), self.clock())
        q = self.queues.of(s)
        s.note = f"refused for {s.model}'s batch queue of {q.limit:,} tokens: waiting for room"
        self.save()
        self.notice(f"batch {s.id}: refused for {s.model}'s enqueued-token limit ({message}); it waits for room, "
                    "no line failed")
        notify(BATCH_QUEUE_REFUSED, f"batchrun: a batch of {s.requests} request(s) to {s.model} was refused for the "
               f"provider's enqueued-token limit ({q.limit:,} tokens); it waits for room, no line failed",
               model=s.model, shard=s.id, requests=s.requests, queue_limit=q.limit)
        return True

    def waiting(self) -> list[Shard]:
        """Shards not yet submitted."""
        return [s for s in self.plan.open if waiting(s)]

    def probing(self) -> bool:
        """Shards wait on batches of theirs in validation while their queue's limit is unknown: a
        --no-wait run waits for those few (validation is quick) rather than exit with them unsent."""
        keys = {key(s) for s in self.waiting() if self.queues.of(s).limit is None}
        return any(holds(s) and s.status in _VALIDATING and key(s) in keys for s in self.plan.open)

    def can_go(self) -> bool:
        """Whether a shard could be submitted now (a round would submit something)."""
        return any(s.phase == CREATING for s in self.plan.open) or bool(self._ready())
