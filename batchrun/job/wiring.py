"""What a live job is built from, checked and wired before it runs: its input's checks, and its
sender (budget, retry policy, fallbacks, providers' keys)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchrun.account.pricing import PriceBook
from batchrun.config import RunConfig
from batchrun.errors import reading
from batchrun.input.shapes import check_model_named, check_template_file
from batchrun.input.sniff import sniff_input
from batchrun.job.routing import shadow_figures
from batchrun.limit.budget import Budget
from batchrun.limit.limiter import Limiters
from batchrun.route.providers import Targets
from batchrun.send.retry import RetryPolicy
from batchrun.send.sender import Sender
from batchrun.store.state import JobState

if TYPE_CHECKING:
    from batchrun.input.parts import Span


async def check_input(cfg: RunConfig) -> Span | None:
    """The input checked before the job is opened (a bad template must not become the identity of
    a job); with --part, the part's bytes."""
    sniff_input(cfg.input)
    await check_template_file(cfg.template, cfg.input, cfg.max_line_bytes)
    await check_model_named(cfg.parser(), cfg.input)
    with reading("input file", cfg.input):
        if cfg.part is None:
            return None
        from batchrun.input.parts import span  # only for a job in parts

        return await asyncio.to_thread(span, cfg.input, cfg.part)


def make_sender(cfg: RunConfig, state: JobState, by_provider: Any, limiters: Limiters, prices: PriceBook,
            planner: Any, targets: Targets, shadow_file: Path) -> Sender:
    """The job's sender; its budget starts from everything billed so far, the shadow's answers too."""
    shadowed = cfg.routing.shadow and not cfg.fresh
    spent = state.stats.cost_usd + (shadow_figures(shadow_file, "")["known_cost_usd"] if shadowed else 0.0)
    return Sender(by_provider, limiters, prices, Budget(cfg.max_cost, spent_usd=spent),
                  RetryPolicy(cfg.max_attempts, base_s=cfg.retry_base, max_wait_s=cfg.max_wait),
                  cfg.fallback_models, planner=planner, targets=targets,
                  key_sources={None: cfg.api_key_env, **{p.name: p.api_key_env or "no variable"
                                                         for p in cfg.routing.providers}})
