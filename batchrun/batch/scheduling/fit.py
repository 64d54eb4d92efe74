"""A waiting shard bigger than its model's whole queue, split into shards that fit: retried as it
is, it would be refused for ever. Like a batch's leftovers (settle), the new shards are written
first and the plan learns of them in one save with the parent closed, so a crash in between
writes the same shards again under the same ids.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

from batchrun.batch.plan import COLLECTED, SPLIT, Plan, Shard, ShardFiles
from batchrun.batch.shard import ShardWriter, index_lines, reshard
from batchrun.records import Result


def split_shard(plan: Plan, shard: Shard, directory: Path, pieces: int) -> list[Shard]:
    """Replace `shard` (not yet submitted) by about `pieces` shards of its requests; the caller saves."""
    ids = (f"s{i:04d}" for i in itertools.count(len(plan.shards) + 1))
    writer = ShardWriter(directory, lambda: next(ids), math.ceil(shard.requests / pieces), round_=shard.round)
    reshard(shard, directory, lambda _line: True, writer)
    new = writer.finish()
    shard.phase, shard.file_id = SPLIT, None
    shard.note = f"split into {len(new)} shards ({', '.join(s.id for s in new)}) to fit the queue of {shard.model}"
    plan.shards.extend(new)
    return new


def fail_shard(shard: Shard, directory: Path, write: Callable[[Result], None], limit: int) -> None:
    """A shard of one request that alone holds more than its model's whole queue: it can never be
    accepted, so its line fails saying so; the caller saves."""
    for line, key in index_lines(ShardFiles.of(directory, shard.id).index):
        write(Result(key=key, line=line, model=shard.model, error_code="token_limit_exceeded", attempts=0,
                     error_message=f"the request alone holds more tokens than {shard.model}'s whole batch queue "
                                   f"({limit:,} enqueued tokens): send it live, or raise the limit"))
    shard.phase, shard.note = COLLECTED, "failed: larger than the model's whole batch queue"
