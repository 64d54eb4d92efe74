"""Upload a shard and create its batch, each step in the checkpoint before the next begins, so
that no shard is ever submitted twice: a shard caught between asking for its batch and hearing
the answer (a kill -9, a lost connection) is looked for at the provider by its metadata first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchrun.batch.api import ATTEMPTS, BatchApi
from batchrun.batch.plan import CREATING, SUBMITTED, UPLOADED, WRITTEN, Plan, Shard, ShardFiles
from batchrun.errors import RetryableError
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
        if shard.phase == WRITTEN:
            f = await self.apis[shard.provider].upload(ShardFiles.of(self.directory, shard.id).requests,
                                      f"batchrun-{self.plan.job_id}-{shard.id}.jsonl", _routed(shard))
            shard.file_id, shard.phase = str(f["id"]), UPLOADED
            self.save()
        resumed = shard.phase == CREATING
        if shard.phase == UPLOADED:
            shard.phase, shard.creating_at = CREATING, self.clock()
            self.save()  # from here on, a batch may exist that only its metadata can find
        if shard.phase == CREATING:
            batch = await self.find(shard) if resumed else None
            if batch is None:
                batch = await self._create(shard)
            self.submitted(shard, batch)

    def submitted(self, shard: Shard, batch: dict[str, Any]) -> None:
        """Record a shard's batch."""
        shard.batch_id, shard.phase = str(batch["id"]), SUBMITTED
        shard.status = str(batch.get("status"))
        self.save()

    async def _create(self, shard: Shard) -> dict[str, Any]:
        assert shard.file_id is not None
        api = self.apis[shard.provider]
        for attempt in range(ATTEMPTS):
            try:
                return await api.create(shard.file_id, ENDPOINTS[shard.endpoint].batch_url,
                                             self.metadata(shard), _routed(shard))
            except RetryableError:
                # the batch may have been made and only its answer lost: look before asking again
                found = await self.find(shard)
                if found is not None:
                    return found
                if attempt == ATTEMPTS - 1:
                    raise
                await asyncio.sleep(api.retry_base_s * 2**attempt)
        raise AssertionError("unreachable")

    async def find(self, shard: Shard) -> dict[str, Any] | None:
        """The batch made for this shard of this job, if the provider has one."""
        want = self.metadata(shard)
        since = (shard.creating_at or 0.0) - CLOCK_SLACK_S
        async for b in self.apis[shard.provider].batches(model=_routed(shard)):
            meta = b.get("metadata")
            if isinstance(meta, dict) and all(meta.get(k) == v for k, v in want.items()):
                return b
            created = b.get("created_at")
            if isinstance(created, int | float) and created < since:
                return None  # the list is newest first: older batches cannot be this shard's
        return None


def _routed(shard: Shard) -> str:
    """The shard's model as its provider knows it (`gw/new-model` is `new-model` at gw)."""
    return shard.model.partition("/")[2] if shard.provider else shard.model
