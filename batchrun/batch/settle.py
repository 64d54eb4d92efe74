"""A batch that reached its end: its answers into the results file, and each request it left
unanswered (expired, cancelled, or in a batch that failed) into a new shard, a live shard
(`--batch-expired live`), or, past MAX_ROUNDS batches or refused by validation, a failed line.

Safe to repeat after a crash: lines already in the output are not written again, and the new
shards get the same ids, since the plan only learns of them in the save that closes the shard.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchrun.account.prices import Price
from batchrun.batch.api import BatchApi
from batchrun.batch.collect import batch_message, load_index, results_of, validation_errors
from batchrun.batch.output import JobOutput
from batchrun.batch.plan import COLLECTED, LIVE, MAX_ROUNDS, Plan, Shard, ShardFiles
from batchrun.batch.shard import ShardWriter, index_lines, reshard
from batchrun.records import Result

UNANSWERED = ("batch_expired", "batch_cancelled")  # error-file codes of lines never run


@dataclass(frozen=True, slots=True)
class Settler:
    """Collects finished batches of one plan."""

    apis: Mapping[str | None, BatchApi]  # by provider (None: --base-url)
    plan: Plan
    directory: Path
    out: JobOutput
    batch_size: int
    live: bool  # --batch-expired live

    async def settle(self, shard: Shard, batch: dict[str, Any], price: Price | None) -> None:
        """Write a finished batch's lines, place what it left, mark the shard collected; one save."""
        files = ShardFiles.of(self.directory, shard.id)
        status = str(batch.get("status"))
        for key, dest in (("output_file_id", files.output), ("error_file_id", files.errors)):
            fid = batch.get(key)
            if isinstance(fid, str) and fid:
                await self.apis[shard.provider].download(fid, dest)
            else:
                dest.unlink(missing_ok=True)
        started = batch.get("created_at") if isinstance(batch.get("created_at"), int | float) else None
        if status == "failed":
            self._refused(shard, batch)
        else:
            index = load_index(files.index)
            for path in (files.output, files.errors):
                for r in results_of(path, shard, index, price, started):
                    if r.error_code not in UNANSWERED:
                        self.out.write(r)
            del index
        shard.note = None if status == "completed" else batch_message(batch)
        self._place_leftovers(shard, status)
        shard.phase = COLLECTED
        self.out.save()

    def _refused(self, shard: Shard, batch: dict[str, Any]) -> None:
        """A batch that failed validation: the lines it names fail with the provider's own error;
        if it names none, every line fails with the batch's error (sending it again would fail the
        same way). Lines it did not name go on in a new shard."""
        errors = validation_errors(batch)
        files = ShardFiles.of(self.directory, shard.id)
        for n, (line, key) in enumerate(index_lines(files.index), 1):
            err = errors.get(n) if errors else ("batch_failed", batch_message(batch))
            if err is not None:
                self.out.write(Result(key=key, line=line, model=shard.model, error_code=err[0],
                                      error_message=f"the batch refused this request: {err[1]}", attempts=1))

    def _place_leftovers(self, shard: Shard, status: str) -> None:
        done = self.out.state.done
        files = ShardFiles.of(self.directory, shard.id)
        left = sum(1 for line, _ in index_lines(files.index) if line not in done)
        if not left:
            return
        if shard.round >= MAX_ROUNDS:  # bounded: a line is not sent batch after batch for ever
            for line, key in index_lines(files.index):
                if line not in done:
                    self.out.write(Result(key=key, line=line, model=shard.model, error_code=f"batch_{status}",
                                          error_message=f"no answer after {shard.round} batches (the last one "
                                                        f"ended {status})", attempts=shard.round))
            return
        start = len(self.plan.shards) + 1
        ids = (f"s{i:04d}" for i in itertools.count(start))
        writer = ShardWriter(self.directory, lambda: next(ids), self.batch_size, round_=shard.round + 1)
        reshard(shard, self.directory, lambda line: line not in done, writer, full_names=self.live)
        new = writer.finish()
        if self.live:
            for s in new:
                s.phase = LIVE
        self.plan.shards.extend(new)
