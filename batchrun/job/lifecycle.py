"""One job lifecycle for every `process` run: check the input, open the job, keep its clock, take its signals,
show its progress, save at the end, summarise and report. What runs in the middle is a `Middle`:
the live pipeline (`job/job.LiveRun`) or the Batch API flow (`job/batch_api/batch_job.BatchRun`,
and `DeadlineRun`, a kind of it).

The figures a run shows while it runs and the summary it ends with come from the same place: the
job's statistics in its state (`job_figures` and `summarise`); a middle adds only what is its own
(requests in flight, limits, batches at the provider), never its own count of records done.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from batchrun.account.stats import summary
from batchrun.clock import now_iso
from batchrun.config import RunConfig
from batchrun.errors import StopReason
from batchrun.job.outcome import Outcome, write_summary_json
from batchrun.job.resume import resume_command
from batchrun.job.wiring import check_input
from batchrun.show.console import Display
from batchrun.show.progress import ProgressFigures
from batchrun.store.opening import JobFiles, open_job
from batchrun.store.output import ResultsFile
from batchrun.store.state import JobState

if TYPE_CHECKING:
    from batchrun.input.parts import Span

# SIGHUP: an ssh session closing
SIGNALS = {signal.SIGINT: StopReason.INTERRUPTED, signal.SIGTERM: StopReason.TERMINATED,
           signal.SIGHUP: StopReason.HANGUP}


class JobClock:
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


class Middle(Protocol):
    """What a run does between opening the job and its last save."""

    clock: JobClock
    saves_on_error: bool  # whether an error still ends in the last save (the end status, the plan)

    @property
    def results(self) -> ResultsFile: ...  # the job's one results file: the lifecycle saves it last and closes it

    @property
    def stopped(self) -> StopReason | None: ...  # why it stopped early; None: it went to the end

    @property
    def complete(self) -> bool: ...  # every record has its line

    async def run(self) -> None: ...  # wires its parts and runs them, inside `running`

    def signalled(self, reason: StopReason, again: bool) -> None: ...

    def figures(self) -> ProgressFigures: ...  # through `job_figures`

    def ended(self) -> None: ...  # after the last save (files that served are removed)

    def sections(self, summ: dict[str, Any]) -> dict[str, Any]: ...  # its own parts of the summary

    def before_summary(self, summ: dict[str, Any]) -> None: ...  # warnings: prices unknown and the like

    def after_summary(self, summ: dict[str, Any]) -> None: ...  # what to do next


async def run_lifecycle(cfg: RunConfig, display: Display,
                        make: Callable[[JobState, JobFiles, Span | None], Middle]) -> Outcome:
    """Check the input, open the job, run `make(state, files, part)` in it, save, summarise and
    report; how the run ended."""
    part = await check_input(cfg)
    files = JobFiles(cfg.input, cfg.output, cfg.identity(), (part.start, part.end) if part else None)
    with open_job(files, fresh=cfg.fresh, retry_failed=cfg.retry_failed, notice=display.notice) as state:
        middle = make(state, files, part)
        state.last_run["command"] = resume_command(cfg.api_key)  # `status` tells it as the next step
        try:
            try:
                await middle.run()
            except BaseException:
                if middle.saves_on_error:
                    await _save_final(state, middle)
                raise
            await _save_final(state, middle)
        finally:
            middle.results.close()
        middle.ended()
        summ = middle.sections(summarise(cfg, state, middle.stopped, middle.complete))
    middle.before_summary(summ)
    write_summary_json(cfg.summary_json, summ, display)
    display.summary(summ)
    middle.after_summary(summ)
    return Outcome(middle.stopped, state.stats.failed + state.stats.invalid == 0, summ)


async def _save_final(state: JobState, middle: Middle) -> None:
    """The run's last checkpoint, the output fsynced first."""
    complete = middle.complete
    if complete:
        state.total = state.stats.done
    state.last_run = {**state.last_run, "status": "complete" if complete else f"stopped: {middle.stopped}",
                      "ended": now_iso()}
    await asyncio.to_thread(middle.results.save)


def summarise(cfg: RunConfig, state: JobState, stopped: StopReason | None, complete: bool) -> dict[str, Any]:
    """The summary JSON's common part, from the job's statistics."""
    return summary(
        state.stats, input_path=str(cfg.input), output_path=str(cfg.output),
        total=state.total or state.stats.done, complete=complete, simulated=cfg.simulate,
        runs=state.runs, elapsed_s=state.elapsed_s, stopped=stopped, rate_limit_wait_s=state.rate_limit_wait_s,
    )


def job_figures(state: JobState, clock: JobClock, simulated: bool, **own: Any) -> ProgressFigures:
    """The running figures: records done, tokens, cost and errors as the summary counts them,
    with what the middle adds of its own (`own`: rate, retries, in flight, limits...)."""
    st = state.stats
    tin, tout = st.tokens
    figures: dict[str, Any] = {
        "elapsed_s": clock.elapsed_this_run(), "input_tokens": tin, "output_tokens": tout, "cost_usd": st.cost_usd,
        "cost_unknown": any(m.unpriced for m in st.models.values()), "errors": st.failed + st.invalid,
        "simulated": simulated, **own}
    return ProgressFigures(done=st.done, total=state.total, **figures)


@contextlib.asynccontextmanager
async def running(middle: Middle, display: Display, state: JobState, simulated: bool,
                  tick: bool = True) -> AsyncIterator[None]:
    """While the middle's work runs: signals go to it, and its figures to the screen (refreshed
    every display interval with `tick`, otherwise when it says so and once at the end)."""
    with _signals(middle):
        async with _showing(display, state, simulated, middle.figures, tick):
            yield


@contextlib.contextmanager
def _signals(middle: Middle) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the middle; it is told whether one came before."""
    loop = asyncio.get_running_loop()
    came: list[StopReason] = []

    def on_signal(reason: StopReason) -> None:
        middle.signalled(reason, again=bool(came))
        came.append(reason)

    for sig, reason in SIGNALS.items():
        loop.add_signal_handler(sig, on_signal, reason)
    try:
        yield
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _showing(display: Display, state: JobState, simulated: bool, figures: Callable[[], ProgressFigures],
                   tick: bool) -> AsyncIterator[None]:
    async def ticking() -> None:
        while True:
            await asyncio.sleep(display.interval_s)
            display.update(figures())

    display.start(state.total, simulated)
    ticker = asyncio.create_task(ticking()) if tick and display.shows_progress else None
    try:
        yield
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if display.shows_progress:
            display.update(figures())
        display.stop()
