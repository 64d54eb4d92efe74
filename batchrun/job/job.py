"""One run of a `process` job: the checks before it is opened, then the lifecycle
(`job/lifecycle`) around the live pipeline as its middle (`LiveRun`); a `--batch-api` run goes to
`job/batch_api/batch_job` instead, around the same lifecycle.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from batchrun.account.pricing import PriceBook
from batchrun.config import RunConfig
from batchrun.errors import StopReason
from batchrun.input.lines import line_batches
from batchrun.job.alerts import BudgetWatch, after_each, watch_canary
from batchrun.job.batch_guard import refuse_fresh_while_batches_run, refuse_live_while_batches_run
from batchrun.job.chunking import Chunking, job_parser
from batchrun.job.connect import clients, endpoint
from batchrun.job.lifecycle import JobClock, job_figures, run_lifecycle, running
from batchrun.job.outcome import Outcome
from batchrun.job.pipeline import Pipeline
from batchrun.job.resume import resume_command
from batchrun.job.routing import (
    Shadowing,
    canary_notice,
    canary_section,
    make_planner,
    routing_summary,
    shadow_open,
    shadow_path,
    warn_routing,
)
from batchrun.job.wiring import make_sender
from batchrun.limit.limiter import Limiters
from batchrun.limit.shared import shared_limits
from batchrun.route.plan import Planner
from batchrun.route.providers import Targets
from batchrun.send.notify import Notifier
from batchrun.send.sender import Sender
from batchrun.send.unknown_model import served_hint
from batchrun.show.console import Display
from batchrun.show.progress import LimitFigures, ProgressFigures
from batchrun.show.routing import canary_line
from batchrun.store.opening import JobFiles, forget_unwritten
from batchrun.store.output import ResultsFile
from batchrun.store.state import JobState

if TYPE_CHECKING:
    from batchrun.input.parts import Span


async def run_job(cfg: RunConfig, display: Display, notifier: Notifier | None = None) -> Outcome:
    """Run the job to its end or a clean stop."""
    refuse_fresh_while_batches_run(cfg)
    if cfg.batch_api:
        from batchrun.job.batch_api.batch_job import run_batch_job  # a live job never loads the Batch API

        return await run_batch_job(cfg, display)
    return await run_lifecycle(cfg, display, lambda state, files, part: LiveRun(cfg, display, state, files, part,
                                                                                notifier))


class LiveRun:
    """The live middle: records read, sent and written by the pipeline."""

    saves_on_error = False  # the periodic checkpoints stand; an error is no end to record

    def __init__(self, cfg: RunConfig, display: Display, state: JobState, files: JobFiles, part: Span | None,
                 notifier: Notifier | None) -> None:
        refuse_live_while_batches_run(state, resume_command(cfg.api_key, also="--batch-api"))
        self.cfg, self.display, self.state, self.files, self.part, self.notifier = (
            cfg, display, state, files, part, notifier)
        self.clock = JobClock(state)
        self.results = ResultsFile(cfg.output, files.checkpoint, state, self.clock.state_bytes)
        self.shadow_file = shadow_path(cfg.output)
        self.pipe: Pipeline | None = None
        self.planner: Planner | None = None
        self.shadow: Shadowing | None = None

    @property
    def stopped(self) -> StopReason | None:
        return self.pipe.stopped if self.pipe is not None else None

    @property
    def complete(self) -> bool:
        return self.stopped is None

    async def run(self) -> None:
        """Wire the parts (endpoint, sessions, limits, planner, sender, shadow) and run the pipeline."""
        cfg, state, display = self.cfg, self.state, self.display
        targets = Targets(p.name for p in cfg.routing.providers)
        prices = cfg.price_book()
        await _look_prices_up(cfg, prices, targets, display)
        async with endpoint(cfg) as (base_url, key), clients(cfg, base_url, key) as by_provider, \
                shared_limits(cfg.shared_limits, cfg.shared_limits_required, display.warn,
                              {None: (base_url, key), **{p.name: (p.base_url, p.api_key)
                                                         for p in cfg.routing.providers}}) as shared:
            self.limiters = limiters = Limiters(
                cfg.rpm, cfg.tpm, ceiling=cfg.concurrency, shared=shared,
                provider_limits={p.name: (p.rpm, p.tpm) for p in cfg.routing.providers})
            self.planner = planner = make_planner(cfg, state, time.time, lambda: pipe.request_save())
            if notice := canary_notice(planner):
                display.notice(notice)
            watch_canary(planner, self.notifier, state, cfg.output.name)
            self.sender = sender = make_sender(cfg, state, by_provider, limiters, prices, planner, targets,
                                               self.shadow_file)
            self.shadow = shadow = Shadowing(cfg.routing.shadow, sender, self.shadow_file) if cfg.routing.shadow \
                else None
            self.parser = job_parser(cfg, prices, targets, display)
            self.parser.seen.reserve(state.total or 0)  # the file's lines: its keys' table never grows
            budget = BudgetWatch(self.notifier, cfg.max_cost, cfg.notify.budget_alerts,
                                 lambda: sender.budget.spent_usd, cfg.output.name) \
                if self.notifier and cfg.max_cost else None
            chunking = Chunking(cfg, state, sender.budget)
            send = chunking.wrap(sender.send)
            lines = line_batches(cfg.input, cfg.max_line_bytes, self.part.bounds() if self.part else None)
            self.pipe = pipe = Pipeline(lines, self.parser, sender, state, self.results, cfg.concurrency,
                                        cfg.drain_timeout, send=shadow.wrap(send) if shadow else send,
                                        after_write=after_each(shadow.written if shadow else None, budget))
            with shadow_open(shadow, cfg.fresh), chunking.kept(lambda: pipe.stopped is None):
                async with running(self, display, state, cfg.simulate):
                    await pipe.run()
            await _name_the_model(pipe, sender, by_provider)
        state.rate_limit_wait_s += limiters.waited_s
        state.stats.abandon(sender.abandoned.by_model)
        if planner is not None and planner.canary is not None:
            state.canary = planner.canary.to_state()

    def signalled(self, reason: StopReason, again: bool) -> None:
        """A signal drains the pipeline; a second one stops it at once."""
        assert self.pipe is not None
        if again:
            self.display.notice("second signal: stopping now without waiting for in-flight requests")
            self.pipe.stop_now()
            return
        self.display.notice(f"stopping: sending nothing new, finishing the requests in flight "
                            f"(up to {self.cfg.drain_timeout:g}s; Ctrl-C again to stop at once)")
        self.pipe.stop(reason)

    def figures(self) -> ProgressFigures:
        """The live figures, read from each part's statistics()."""
        assert self.pipe is not None
        st, clock, cfg, planner = self.state.stats, self.clock, self.cfg, self.planner
        el = clock.elapsed_this_run()
        limits = tuple(LimitFigures(f"{s.provider}/{s.model}" if s.provider else s.model,
                                    s.rpm, s.tpm, s.limit_rpm, s.source, s.rate_limited)
                       for s in self.limiters.statistics())
        routed = {"cost_usd": self.sender.budget.spent_usd} if planner is not None else {}  # the shadow's spend too
        return job_figures(
            self.state, clock, cfg.simulate, rps=(st.done - clock.done_before) / el if el > 0 else 0.0,
            retries=self.sender.statistics().retries, in_flight=self.pipe.statistics().in_flight, limits=limits,
            wait_s=self.limiters.waited_s,
            routing=canary_line(c) if (c := canary_section(cfg, self.state, planner)) else None, **routed)

    def ended(self) -> None:
        if self.stopped is StopReason.UNKNOWN_MODEL and self.state.stats.done == 0:
            forget_unwritten(self.files)  # the same command with the model's name fixed starts afresh

    def sections(self, summ: dict[str, Any]) -> dict[str, Any]:
        return routing_summary(self.cfg, self.state, self.planner, self.shadow_file, summ)

    def before_summary(self, summ: dict[str, Any]) -> None:
        if self.parser.streams_disabled:
            self.display.warn(f"{self.parser.streams_disabled} record(s) asked for \"stream\": true; batchrun does "
                              "not stream, so they were sent with \"stream\": false")
        _warn_unpriced(self.display, summ)

    def after_summary(self, summ: dict[str, Any]) -> None:
        assert self.pipe is not None
        _next_step(self.cfg, self.display, self.state, self.pipe, summ)
        warn_routing(self.cfg, self.planner, self.shadow, summ, self.display)


async def _name_the_model(pipe: Pipeline, sender: Sender, by_provider: dict[str | None, Any]) -> None:
    """A stop on a model the provider does not serve says what its own model list holds."""
    if pipe.stopped is StopReason.UNKNOWN_MODEL and (on := sender.model_watch.stopped_on) is not None:
        pipe.stop_message = (pipe.stop_message or "") + await served_hint(by_provider[on[0]], on[1])


async def _look_prices_up(cfg: RunConfig, prices: PriceBook, targets: Targets, display: Display) -> None:
    """Before the first request: loading the price snapshot takes a moment."""
    for model in dict.fromkeys(cfg.models_named()):
        t = targets(model)
        if await asyncio.to_thread(prices.price, t.model, None, t.provider) is None and cfg.max_cost is not None:
            display.warn(f"--max-cost cannot cap model {model!r}: its price is unknown (add it with --prices)")
        await asyncio.to_thread(prices.context_window, t.model, t.provider)


def _warn_unpriced(display: Display, summ: dict[str, Any]) -> None:
    for model in summ["unpriced_models"]:
        unmetered = summ["models"].get(model, {}).get("unmetered", 0)
        if unmetered:
            display.warn(f"{unmetered} answer(s) from model {model!r} came back without usage: its tokens "
                         "and cost are unknown for those, so its cost is shown as unknown")
        else:
            display.warn(f"no price is known for model {model!r}: its cost is shown as unknown "
                         "(add it with --prices)")


def _next_step(cfg: RunConfig, display: Display, state: JobState, pipe: Pipeline, summ: dict[str, Any]) -> None:
    """What to do next when the run stopped early."""
    if pipe.stopped is None:
        return
    again = resume_command(cfg.api_key)
    advice = _ADVICE.get(pipe.stopped)
    if pipe.abandoned:
        display.warn(f"stopped at once after {state.stats.done} record(s); the requests in flight were "
                     f"abandoned and are sent again by the next run: {again}")
    elif advice is not None:
        if pipe.stopped is StopReason.BUDGET and cfg.max_cost:
            again = resume_command(cfg.api_key, max_cost=2 * cfg.max_cost)
        display.error(advice.format(message=pipe.stop_message, key_env=cfg.api_key_env, cap=cfg.max_cost or 0.0,
                                    spent=state.stats.cost_usd + (summ.get("shadow") or {}).get("known_cost_usd", 0.0))
                      + ("" if pipe.stopped is StopReason.UNKNOWN_MODEL else f": {again}"))
    else:
        display.hint(f"stopped cleanly after {state.stats.done} record(s); to resume, run: {again}")


# What to do after a stop that is not a signal; none of them marked a record failed.
_ADVICE = {
    StopReason.AUTH: "{message}; fix the key, then resume with",
    StopReason.QUOTA: "the account is out of quota ({message}); no record was marked failed for it: add "
                      "credit, then resume with",
    StopReason.WAIT: "{message}: stopped, no record was marked failed for it; resume later with",
    StopReason.UNAVAILABLE: "{message}: stopped, no record was marked failed for it; resume later with",
    StopReason.WRITE_FAILED: "{message}: stopped, nothing was lost; free space or fix the permissions, then "
                             "resume with",
    StopReason.BUDGET: "--max-cost ${cap:g} reached: spent ${spent:.6f}; raise --max-cost to go on, for "
                       "example (twice the cap)",
    StopReason.UNKNOWN_MODEL: "{message}; stopped, nothing was written and no record was marked failed: "
                              "run the same command with the model's name fixed",
}
