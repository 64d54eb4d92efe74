"""The input file into shards, once per job: every line not yet done becomes a request in a
shard, or (a bad line, or one the provider would refuse) an `invalid_input` result line now,
before anything is uploaded."""

from __future__ import annotations

import itertools
from pathlib import Path

from batchrun.batch.output import JobOutput
from batchrun.batch.plan import Plan
from batchrun.batch.shard import ShardWriter, request_line
from batchrun.input.lines import line_batches
from batchrun.input.shapes import LineParser
from batchrun.records import Record, invalid_result
from batchrun.route.providers import Targets


async def split_input(path: Path, max_line_bytes: int, parser: LineParser, plan: Plan, directory: Path,
                      out: JobOutput, batch_size: int, targets: Targets) -> None:
    """Write the shards, then name them all in the plan in one checkpoint save."""
    ids = (f"s{i:04d}" for i in itertools.count(len(plan.shards) + 1))
    writer = ShardWriter(directory, lambda: next(ids), batch_size)
    done = out.state.done
    async for batch in line_batches(path, max_line_bytes):
        for n, data in batch:
            if n in done:  # answered in an earlier run (a live one, or before --retry-failed)
                parser.key_only(n, data)
                continue
            item = parser.parse_line(n, data)
            if type(item) is not Record:
                out.write(item)  # type: ignore[arg-type]
                continue
            target = targets(item.model)
            line = request_line(item, target.model if target.provider else None)
            if writer.fits(line):
                writer.add(item.endpoint, item.model, line, n, item.key, target.provider, item.est_input_tokens,
                           item.max_output_tokens)
            else:
                out.write(invalid_result(n, f"the request is {len(line)} bytes, more than a batch input "
                                            f"file may hold ({writer.max_bytes} bytes)"))
    plan.shards.extend(writer.finish())
    plan.sharded = True
    out.save()
