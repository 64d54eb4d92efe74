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
from batchrun.limit.budget import Budget
from batchrun.limit.limiter import Limiters
from batchrun.route.providers import Targets
from batchrun.secret import ApiKey
from batchrun.send.retry import RetryPolicy
from batchrun.send.sender import Sender
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


async def send_live(cfg: RunConfig, state: JobState, shard: Shard, directory: Path, checkpoint: Path,
                    snapshot: Callable[[], bytes], base_url: str, key: ApiKey,
                    on_pipeline: Callable[[Pipeline | None], None],
                    prices: PriceBook | None = None) -> StopReason | None:
    """Send a live shard's requests (at `prices`: the run's by default); why the pipeline stopped,
    None when it sent them all."""
    prices = prices or cfg.price_book()
    async with clients(cfg, base_url, key) as by_provider:  # a shard's lines name NAME/model: routed by it
        limiters = Limiters(cfg.rpm, cfg.tpm, ceiling=cfg.concurrency,
                            provider_limits={p.name: (p.rpm, p.tpm) for p in cfg.routing.providers})
        sender = Sender(by_provider, limiters, prices, Budget(cfg.max_cost, spent_usd=state.stats.cost_usd),
                        RetryPolicy(cfg.max_attempts, base_s=cfg.retry_base, max_wait_s=cfg.max_wait),
                        cfg.fallback_models, targets=Targets(p.name for p in cfg.routing.providers),
                        key_sources={None: cfg.api_key_env, **{p.name: p.api_key_env or "no variable"
                                                               for p in cfg.routing.providers}})
        named = shard.model if shard.provider is not None else None
        pipe = Pipeline(shard_lines(ShardFiles.of(directory, shard.id), named), cfg.parser(), sender, state,
                        cfg.output, checkpoint, snapshot, cfg.concurrency, cfg.drain_timeout)
        on_pipeline(pipe)
        try:
            await pipe.run()
        finally:
            on_pipeline(None)
    return pipe.stopped
