"""Upload a shard and create its batch, each step in the checkpoint before the next begins, so
that no shard is ever submitted twice: a shard caught between asking for its batch and hearing
the answer (a kill -9, a lost connection) is looked for at the provider by its metadata first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchrun.batch.api import BatchApi, retrying
from batchrun.batch.plan import CREATING, SUBMITTED, UPLOADED, WRITTEN, Plan, Shard, ShardFiles
from batchrun.errors import RateLimited, RetryableError
from batchrun.input.endpoints import ENDPOINTS

# How far back before a shard's creation a listed batch may have been made (clocks differ).
CLOCK_SLACK_S = 600.0


@dataclass(frozen=True, slots=True)
class Submitter:
    """Submits the shards of one plan, each to its provider's API (None: --base-url); `save`
    writes the checkpoint (output fsynced first)."""

    apis: Mapping[str | None, BatchApi]
    plan: Plan
    directory: Path
    save: Callable[[], None]
    clock: Callable[[], float] = time.time

    def metadata(self, shard: Shard) -> dict[str, str]:
        """What names a shard's batch at the provider (OpenAI: up to 16 keys, short values)."""
        return {"batchrun_job": self.plan.job_id, "batchrun_shard": shard.id}

    async def submit(self, shard: Shard) -> None:
        """Take a shard from wherever it stopped to submitted."""
        await self.upload(shard)
        resumed = shard.phase == CREATING
        if shard.phase == UPLOADED:
            shard.phase, shard.creating_at = CREATING, self.clock()
            self.save()  # from here on, a batch may exist that only its metadata can find
        if shard.phase == CREATING:
            batch = await self.find(shard) if resumed else None
            if batch is None:
                batch = await self._create(shard)
            self.submitted(shard, batch)

    async def upload(self, shard: Shard) -> None:
        """Upload a written shard's file (a shard waiting for the queue goes up ahead of its turn)."""
        if shard.phase == WRITTEN:
            f = await self.apis[shard.provider].upload(ShardFiles.of(self.directory, shard.id).requests,
                                                       f"batchrun-{self.plan.job_id}-{shard.id}.jsonl", _routed(shard))
            shard.file_id, shard.phase = str(f["id"]), UPLOADED
            self.save()

    def submitted(self, shard: Shard, batch: dict[str, Any]) -> None:
        """Record a shard's batch."""
        shard.batch_id, shard.phase = str(batch["id"]), SUBMITTED
        shard.status = str(batch.get("status"))
        self.save()

    async def _create(self, shard: Shard) -> dict[str, Any]:
        """POST /batches under the API's retry policy; after a failure whose answer may have been
        lost (not a 429: that one made no batch) the batch is looked for before it is asked again."""
        file_id = shard.file_id
        assert file_id is not None
        api = self.apis[shard.provider]
        lost = False

        async def once() -> dict[str, Any]:
            nonlocal lost
            if lost and (found := await self.find(shard)) is not None:
                return found
            try:
                return await api.create(file_id, ENDPOINTS[shard.endpoint].batch_url, self.metadata(shard),
                                        _routed(shard))
            except RateLimited:
                raise
            except RetryableError:
                lost = True
                raise

        return await retrying(api.policy, once, api.rng)

    async def find(self, shard: Shard) -> dict[str, Any] | None:
        """The batch made for this shard of this job, if the provider has one."""
        want = self.metadata(shard)
        since = (shard.creating_at or 0.0) - CLOCK_SLACK_S
        async for b in self.apis[shard.provider].batches(model=_routed(shard)):
            meta = b.get("metadata")
            if b.get("id") in shard.refused:  # an earlier batch of it, refused for the queue
                continue
            if isinstance(meta, dict) and all(meta.get(k) == v for k, v in want.items()):
                return b
            created = b.get("created_at")
            if isinstance(created, int | float) and created < since:
                return None  # the list is newest first: older batches cannot be this shard's
        return None


def _routed(shard: Shard) -> str:
    """The shard's model as its provider knows it (`gw/new-model` is `new-model` at gw)."""
    return shard.model.partition("/")[2] if shard.provider else shard.model
