"""`--batch-expired live`: the requests an expired batch left unanswered, sent through the live
path at once. A live shard's request lines are Batch API input lines, one of the input shapes,
so they go through the ordinary pipeline as they are, under their own input line numbers:
lines already answered are skipped, and a stopped run picks the rest up next time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson

from batchrun.account.pricing import PriceBook
from batchrun.batch.plan import Shard, ShardFiles
from batchrun.batch.shard import index_lines
from batchrun.config import RunConfig
from batchrun.errors import StopReason
from batchrun.job.connect import clients
from batchrun.job.pipeline import Pipeline
from batchrun.job.routing import shadow_path
from batchrun.job.wiring import make_sender
from batchrun.limit.limiter import Limiters
from batchrun.route.providers import Targets
from batchrun.secret import ApiKey
from batchrun.store.output import ResultsFile
from batchrun.store.state import JobState

CHUNK = 1000


async def shard_lines(files: ShardFiles, model: str | None = None) -> AsyncIterator[list[tuple[int, bytes | None]]]:
    """The shard's request lines under their input line numbers, a chunk at a time; `model`: a
    provider's shard's NAME/model, which a line written for its Batch API names without NAME
    (a shard never submitted, sent live instead), and by which the live path routes it."""
    chunk: list[tuple[int, bytes | None]] = []
    with open(files.requests, "rb") as reqs:  # noqa: ASYNC230 (a local file, read a chunk at a time)
        for (line, _key), data in zip(index_lines(files.index), reqs, strict=True):
            if model is not None:
                doc = orjson.loads(data)
                doc["body"]["model"] = model
                data = orjson.dumps(doc)
            chunk.append((line, data.rstrip(b"\n")))
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


async def send_live(cfg: RunConfig, state: JobState, shard: Shard, directory: Path, results: ResultsFile,
                    base_url: str, key: ApiKey, on_pipeline: Callable[[Pipeline | None], None],
                    prices: PriceBook | None = None) -> StopReason | None:
    """Send a live shard's requests into the job's results file (at `prices`: the run's by
    default), by the sender a live job's is built as (no planner: a Batch API job has no routing
    tables); why the pipeline stopped, None when it sent them all."""
    targets = Targets(p.name for p in cfg.routing.providers)
    async with clients(cfg, base_url, key) as by_provider:  # a shard's lines name NAME/model: routed by it
        limiters = Limiters(cfg.rpm, cfg.tpm, ceiling=cfg.concurrency,
                            provider_limits={p.name: (p.rpm, p.tpm) for p in cfg.routing.providers})
        sender = make_sender(cfg, state, by_provider, limiters, prices or cfg.price_book(), None, targets,
                             shadow_path(cfg.output))
        named = shard.model if shard.provider is not None else None
        pipe = Pipeline(shard_lines(ShardFiles.of(directory, shard.id), named), cfg.parser(), sender, state, results,
                        cfg.concurrency, cfg.drain_timeout)
        on_pipeline(pipe)
        try:
            await pipe.run()
        finally:
            on_pipeline(None)
    return pipe.stopped
