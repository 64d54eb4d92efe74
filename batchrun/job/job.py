"""One run of a `process` job: open it, wire the parts, run the pipeline, save, summarise.

`run_job` reads as the steps it takes; each step is a function of its own below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import summary
from batchrun.clock import now_iso
from batchrun.config import RunConfig
from batchrun.errors import StopReason, WriteFailed
from batchrun.input.lines import line_batches
from batchrun.job.alerts import BudgetWatch, after_each, watch_canary
from batchrun.job.batch_guard import refuse_fresh_while_batches_run, refuse_live_while_batches_run
from batchrun.job.chunking import Chunking, job_parser
from batchrun.job.connect import clients, endpoint
from batchrun.job.outcome import Outcome, write_summary_json
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
from batchrun.job.wiring import check_input, make_sender
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
from batchrun.store.opening import JobFiles, forget_unwritten, open_job
from batchrun.store.state import JobState, save_atomic


async def run_job(cfg: RunConfig, display: Display, notifier: Notifier | None = None) -> Outcome:
    """Run the job to its end or a clean stop."""
    refuse_fresh_while_batches_run(cfg)
    if cfg.batch_api:
        from batchrun.job.batch_api.batch_job import run_batch_job  # a live job never loads the Batch API

        return await run_batch_job(cfg, display)
    part = await check_input(cfg)
    files = JobFiles(cfg.input, cfg.output, cfg.identity(), (part.start, part.end) if part else None)
    with open_job(files, fresh=cfg.fresh, retry_failed=cfg.retry_failed, notice=display.notice) as state:
        refuse_live_while_batches_run(state, resume_command(cfg.api_key, also="--batch-api"))
        state.last_run["command"] = resume_command(cfg.api_key)  # `status` tells it as the next step
        clock = _JobClock(state)
        targets = Targets(p.name for p in cfg.routing.providers)
        prices = cfg.price_book()
        await _look_prices_up(cfg, prices, targets, display)
        shadow_file = shadow_path(cfg.output)
        async with endpoint(cfg) as (base_url, key), clients(cfg, base_url, key) as by_provider, \
                shared_limits(cfg.shared_limits, cfg.shared_limits_required, display.warn,
                              {None: (base_url, key), **{p.name: (p.base_url, p.api_key)
                                                         for p in cfg.routing.providers}}) as shared:
            limiters = Limiters(cfg.rpm, cfg.tpm, ceiling=cfg.concurrency,
                                provider_limits={p.name: (p.rpm, p.tpm) for p in cfg.routing.providers},
                                shared=shared)
            planner = make_planner(cfg, state, time.time, lambda: pipe.request_save())
            if notice := canary_notice(planner):
                display.notice(notice)
            watch_canary(planner, notifier, state, cfg.output.name)
            sender = make_sender(cfg, state, by_provider, limiters, prices, planner, targets, shadow_file)
            shadow = Shadowing(cfg.routing.shadow, sender, shadow_file) if cfg.routing.shadow else None
            parser = job_parser(cfg, prices, targets, display)
            budget = BudgetWatch(notifier, cfg.max_cost, cfg.notify.budget_alerts, lambda: sender.budget.spent_usd,
                                 cfg.output.name) if notifier and cfg.max_cost else None
            chunking = Chunking(cfg, state, sender.budget)
            send = chunking.wrap(sender.send)
            lines = line_batches(cfg.input, cfg.max_line_bytes, part.bounds() if part else None)
            pipe = Pipeline(lines, parser, sender, state,
                            cfg.output, files.checkpoint, clock.state_bytes, cfg.concurrency, cfg.drain_timeout,
                            send=shadow.wrap(send) if shadow else send,
                            after_write=after_each(shadow.written if shadow else None, budget))
            figures = _progress(cfg, state, clock, limiters, sender, pipe, planner)
            with (_signals(pipe, display, cfg.drain_timeout), shadow_open(shadow, cfg.fresh),
                  chunking.kept(lambda: pipe.stopped is None)):
                async with _showing(display, state, cfg.simulate, figures):
                    await pipe.run()
            await _name_the_model(pipe, sender, by_provider)
        state.rate_limit_wait_s += limiters.waited_s
        state.stats.abandon(sender.abandoned.by_model)
        if planner is not None and planner.canary is not None:
            state.canary = planner.canary.to_state()
        await _save_final(state, pipe.stopped, files, clock)
        if pipe.stopped is StopReason.UNKNOWN_MODEL and state.stats.done == 0:
            forget_unwritten(files)  # the same command with the model's name fixed starts afresh
        summ = routing_summary(cfg, state, planner, shadow_file, _summarise(cfg, state, pipe.stopped))
    if parser.streams_disabled:
        display.warn(f"{parser.streams_disabled} record(s) asked for \"stream\": true; batchrun does not stream, "
                     "so they were sent with \"stream\": false")
    _report(cfg, display, state, pipe, summ)
    warn_routing(cfg, planner, shadow, summ, display)
    return Outcome(pipe.stopped, state.stats.failed + state.stats.invalid == 0, summ)


async def _name_the_model(pipe: Pipeline, sender: Sender, by_provider: dict[str | None, Any]) -> None:
    """A stop on a model the provider does not serve says what its own model list holds."""
    if pipe.stopped is StopReason.UNKNOWN_MODEL and (on := sender.model_watch.stopped_on) is not None:
        pipe.stop_message = (pipe.stop_message or "") + await served_hint(by_provider[on[0]], on[1])


class _JobClock:
    """The job's elapsed time across runs, as the checkpoint records it."""

    def __init__(self, state: JobState) -> None:
        self.state = state
        self.started = time.monotonic()
        self.elapsed_before = state.elapsed_s
        self.done_before = state.stats.done

    def elapsed_this_run(self) -> float:
        return time.monotonic() - self.started

    def state_bytes(self) -> bytes:
        """The checkpoint's content, with the elapsed time brought up to now."""
        self.state.elapsed_s = self.elapsed_before + self.elapsed_this_run()
        return self.state.to_bytes()


async def _look_prices_up(cfg: RunConfig, prices: PriceBook, targets: Targets, display: Display) -> None:
    """Before the first request: loading the price snapshot takes a moment."""
    for model in dict.fromkeys(cfg.models_named()):
        t = targets(model)
        if await asyncio.to_thread(prices.price, t.model, None, t.provider) is None and cfg.max_cost is not None:
            display.warn(f"--max-cost cannot cap model {model!r}: its price is unknown (add it with --prices)")
        await asyncio.to_thread(prices.context_window, t.model, t.provider)


def _progress(
    cfg: RunConfig, state: JobState, clock: _JobClock, limiters: Limiters, sender: Sender, pipe: Pipeline,
    planner: Planner | None,
) -> Callable[[], ProgressFigures]:
    """The live figures, read from each part's statistics()."""

    def figures() -> ProgressFigures:
        st = state.stats
        el = clock.elapsed_this_run()
        tin, tout = st.tokens
        limits = tuple(LimitFigures(f"{s.provider}/{s.model}" if s.provider else s.model,
                                    s.rpm, s.tpm, s.limit_rpm, s.source, s.rate_limited)
                       for s in limiters.statistics())
        return ProgressFigures(
            done=st.done, total=state.total, elapsed_s=el,
            rps=(st.done - clock.done_before) / el if el > 0 else 0.0,
            input_tokens=tin, output_tokens=tout,  # routed: the budget's count holds the shadow's spend too
            cost_usd=sender.budget.spent_usd if planner is not None else st.cost_usd,
            cost_unknown=any(m.unpriced for m in st.models.values()),
            retries=sender.statistics().retries, errors=st.failed + st.invalid,
            in_flight=pipe.statistics().in_flight, limits=limits, wait_s=limiters.waited_s,
            simulated=cfg.simulate, routing=canary_line(c) if (c := canary_section(cfg, state, planner)) else None,
        )

    return figures


@contextlib.contextmanager
def _signals(pipe: Pipeline, display: Display, drain_timeout: float) -> Any:
    """SIGINT, SIGTERM and SIGHUP (an ssh session closing) drain the pipeline; a second signal
    stops it at once."""
    loop = asyncio.get_running_loop()

    def on_signal(reason: StopReason) -> None:
        if pipe.stopped in (StopReason.INTERRUPTED, StopReason.TERMINATED, StopReason.HANGUP):
            display.notice("second signal: stopping now without waiting for in-flight requests")
            pipe.stop_now()
            return
        display.notice(f"stopping: sending nothing new, finishing the requests in flight "
                       f"(up to {drain_timeout:g}s; Ctrl-C again to stop at once)")
        pipe.stop(reason)

    loop.add_signal_handler(signal.SIGINT, on_signal, StopReason.INTERRUPTED)
    loop.add_signal_handler(signal.SIGTERM, on_signal, StopReason.TERMINATED)
    loop.add_signal_handler(signal.SIGHUP, on_signal, StopReason.HANGUP)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _showing(
    display: Display, state: JobState, simulated: bool, figures: Callable[[], ProgressFigures]
) -> AsyncIterator[None]:
    """Progress on screen while the pipeline runs, refreshed every display interval."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(display.interval_s)
            display.update(figures())

    display.start(state.total, simulated)
    ticker = asyncio.create_task(tick()) if display.shows_progress else None
    try:
        yield
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            display.update(figures())
        display.stop()


async def _save_final(state: JobState, stopped: StopReason | None, files: JobFiles, clock: _JobClock) -> None:
    """The last checkpoint of the run; the pipeline has fsynced the output already."""
    if stopped is None:
        state.total = state.stats.done
    state.last_run = {**state.last_run, "status": "complete" if stopped is None else f"stopped: {stopped}",
                      "ended": now_iso()}
    try:
        await asyncio.to_thread(save_atomic, files.checkpoint, clock.state_bytes())
    except OSError as e:  # the output is whole lines: the next run recovers from it
        raise WriteFailed(f"cannot write the checkpoint {files.checkpoint}: {e.strerror or e}; "
                          "nothing was lost: free space first") from None


def _summarise(cfg: RunConfig, state: JobState, stopped: StopReason | None) -> dict[str, Any]:
    return summary(
        state.stats, input_path=str(cfg.input), output_path=str(cfg.output),
        total=state.total or state.stats.done, complete=stopped is None, simulated=cfg.simulate,
        runs=state.runs, elapsed_s=state.elapsed_s, stopped=stopped, rate_limit_wait_s=state.rate_limit_wait_s,
    )


def _report(cfg: RunConfig, display: Display, state: JobState, pipe: Pipeline, summ: dict[str, Any]) -> None:
    """The summary, and what to do next when the run stopped early."""
    for model in summ["unpriced_models"]:
        unmetered = summ["models"].get(model, {}).get("unmetered", 0)
        if unmetered:
            display.warn(f"{unmetered} answer(s) from model {model!r} came back without usage: its tokens "
                         "and cost are unknown for those, so its cost is shown as unknown")
        else:
            display.warn(f"no price is known for model {model!r}: its cost is shown as unknown "
                         "(add it with --prices)")
    write_summary_json(cfg.summary_json, summ, display)
    display.summary(summ)
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
        display.notice(f"stopped cleanly after {state.stats.done} record(s); to resume, run: {again}")


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
