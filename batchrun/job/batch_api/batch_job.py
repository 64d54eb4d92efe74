"""One run of a `process --batch-api` job: shard the input, submit each shard as a provider
batch, poll, collect, and place what a batch left unanswered; every step in the checkpoint as
it happens, so the same command carries on after any stop without submitting a shard twice.

`--no-wait` does one round (submit, collect what is finished) and stops with exit 75 while
batches run; Ctrl-C while waiting leaves the batches running at the provider (exit 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.batch.api import BATCH_POLICY, BatchApi
from batchrun.batch.output import JobOutput
from batchrun.batch.plan import LIVE, SUBMITTED, TERMINAL_STATES, WRITTEN, Plan, Shard, ShardFiles, shard_dir
from batchrun.batch.poll import PollBackoff
from batchrun.batch.scheduling.queue import holds
from batchrun.batch.settle import Settler
from batchrun.batch.split import split_input
from batchrun.batch.submit import Submitter
from batchrun.config import RunConfig
from batchrun.errors import BatchrunError, ConfigError, FatalRequestError, JobError, ModelNotFound, StopReason
from batchrun.job.batch_api.batch_live import send_live
from batchrun.job.batch_api.batch_queue import budget_stop, scheduler, warn_prices
from batchrun.job.batch_api.batch_report import next_step, warn_batch_prices
from batchrun.job.connect import endpoint
from batchrun.job.lifecycle import JobClock, job_figures, run_lifecycle, running
from batchrun.job.outcome import Outcome, stop_reason
from batchrun.job.pipeline import Pipeline
from batchrun.job.resume import resume_command
from batchrun.route.providers import Targets
from batchrun.secret import ApiKey, redact_url
from batchrun.send.session import make_session
from batchrun.show.batches import format_counts
from batchrun.show.console import Display
from batchrun.show.progress import ProgressFigures
from batchrun.store.opening import JobFiles
from batchrun.store.state import JobState


async def run_batch_job(cfg: RunConfig, display: Display, kind: type[BatchRun] | None = None) -> Outcome:
    """Run a Batch API job to its end, a --no-wait round, or a clean stop (`kind`: a BatchRun that
    decides otherwise what goes where, as run/deadline's)."""
    if cfg.simulate and cfg.no_wait:
        raise ConfigError("--no-wait with --simulate: the in-process simulator ends with the run and its "
                          "batches with it; serve `batchrun mock-server` and pass its --base-url instead")
    r = cfg.routing
    if r.route or r.canary or r.shadow:  # each is a per-record decision of the live path
        raise ConfigError("--batch-api does not take [route], [canary] or [shadow] from the config (each is a "
                          "decision per live request); run without them (another --config)")
    return await run_lifecycle(cfg, display, lambda state, files, _: (kind or BatchRun)(cfg, display, state, files))


class BatchRun:
    """The Batch API middle of the job's lifecycle: the parts of one run and the steps it takes."""

    saves_on_error = True  # the plan as it stands and the run's end are saved whatever stopped it
    live_says = "--batch-expired live: sending the {n} unanswered request(s) of shard {id} through the live API"

    def __init__(self, cfg: RunConfig, display: Display, state: JobState, files: JobFiles) -> None:
        self.cfg, self.display, self.state, self.files = cfg, display, state, files
        self.clock = JobClock(state)
        plan = Plan.from_state(state.batch)
        if plan is None or (cfg.retry_failed and not plan.open):
            plan = Plan.new()  # --retry-failed: the lines it dropped go into new shards
        self.plan = plan
        self.dir = shard_dir(files.checkpoint)
        self.out = self.results = JobOutput(cfg.output, files.checkpoint, state, plan, self.state_bytes)
        self.prices = PriceBook(cfg.prices, None if cfg.simulate else cfg.base_url,
                                provider_urls={p.name: p.base_url for p in cfg.routing.providers})
        self.stopped: StopReason | None = None
        self._wake = asyncio.Event()
        self._pipe: Pipeline | None = None

    def state_bytes(self) -> bytes:
        """The checkpoint as it stands (a kind of run adds its own figures: `DeadlineRun`)."""
        return self.clock.state_bytes()

    @property
    def complete(self) -> bool:
        return self.stopped is None and not self.plan.open

    async def run(self) -> None:
        """Shard (once per job), then submit, poll and collect until done or stopped."""
        self.out.save()  # the plan's job id is on disk before anything is uploaded under it
        if not self.plan.sharded:
            parser = self.cfg.parser()
            await split_input(self.cfg.input, self.cfg.max_line_bytes, parser, self.plan, self.dir, self.out,
                              self.cfg.batch_size, Targets(p.name for p in self.cfg.routing.providers))
            self.display.notice(f"--batch-api: {len(self.plan.shards)} shard(s) written to {self.dir}")
            if parser.streams_disabled:
                self.display.warn(f"{parser.streams_disabled} record(s) asked for \"stream\": true; batches do not "
                                  "stream, so they were submitted with \"stream\": false")
        self._check_shard_files()
        warn_prices(self.plan, self.prices, self.display.warn, self.cfg.max_cost)
        async with running(self, self.display, self.state, self.cfg.simulate, tick=False):
            async with endpoint(self.cfg) as (url, key), make_session(4) as session:
                policy = dataclasses.replace(BATCH_POLICY, base_s=self.cfg.retry_base, max_wait_s=self.cfg.max_wait)
                apis = {None: BatchApi(session, url, key, self.cfg.timeout, policy)} | {
                    p.name: BatchApi(session, p.base_url, p.api_key, self.cfg.timeout, policy, dict(p.headers))
                    for p in self.cfg.routing.providers}
                self.sched = scheduler(self.cfg, self.plan, Submitter(apis, self.plan, self.dir, self.out.save),
                                       self.dir, self.out, self.display.notice, self.prices, self.state)
                settler = Settler(apis, self.plan, self.dir, self.out, self.cfg.batch_size,
                                  self.cfg.batch_expired == "live")
                await self._calls(self._loop(apis, settler, url, key))

    def _check_shard_files(self) -> None:
        """The shard files map each answer back to its input line: without them a batch's answers
        cannot be placed, so a folder deleted mid-job is one sentence, not a retry loop."""
        missing = [s.id for s in self.plan.shards if s.open and not ShardFiles.of(self.dir, s.id).index.exists()]
        if missing:
            raise JobError(f"the shard files of {len(missing)} open batch(es) are gone from {self.dir} (they map the "
                           "provider's answers back to input lines): restore the folder, or pass --fresh to "
                           "start over (which submits those records again, and pays again)")

    async def _calls(self, loop: Coroutine[Any, Any, None]) -> None:
        """The provider's refusals as the live path's stops: the same exit codes, all resumable."""
        try:
            await loop
        except BatchrunError as e:
            if (reason := stop_reason(e)) is None:
                if isinstance(e, FatalRequestError):
                    raise JobError(f"the provider refused a Batch API call ({e.message}); does "
                                   f"{redact_url(self.cfg.base_url)} serve /files and /batches?") from None
                raise
            self.stopped = reason
            # the command that goes on follows with the batches left (batch_report.next_step)
            self.display.error(f"the provider's Batch API: {e.message}; stopped, nothing is lost")

    async def _loop(self, apis: Mapping[str | None, BatchApi], settler: Settler, url: str, key: ApiKey) -> None:
        backoff = PollBackoff()
        while self.stopped is None:
            await self.sched.submit_round()
            for s in [s for s in self.plan.open if s.phase == LIVE]:
                if not await self._live(s, url, key):
                    return
            wait = backoff.next_s(await self._poll(apis, settler))  # every round: a change resets it
            if not self.plan.open or self.stopped is not None:
                return
            if self.sched.can_go():
                continue  # a batch freed the queue, or left lines for a new shard: submit now
            running = any(holds(s) for s in self.plan.open)
            if not running and self.sched.budget_blocked:
                self.stopped = StopReason.BUDGET
                self.display.warn(budget_stop(self.sched, self.cfg.max_cost))
                return
            if self.cfg.no_wait and not self.sched.probing():
                self.stopped = StopReason.BATCHES_RUNNING
                return
            if not running and (clock := self.sched.queues.next_wait(self.plan.shards, time.time())) is not None:
                wait = clock  # nothing of ours runs: the queue is held by others; wait by the clock
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _poll(self, apis: Mapping[str | None, BatchApi], settler: Settler) -> bool:
        """Ask after every running batch; collect those that ended. Whether any changed state (its
        counts alone do not count: a big batch's counts move on every poll, and polling must slow)."""
        changed = moved = False
        self.sched.begin_poll()
        for s in [s for s in self.plan.open if s.phase == SUBMITTED]:
            if self.stopped is not None:
                break
            assert s.batch_id is not None
            try:
                b = await apis[s.provider].get(s.batch_id)
            except ModelNotFound:  # 404: the provider has no such batch (another account or server)
                self.display.warn(f"batch {s.batch_id} of shard {s.id} is unknown to the provider: "
                                  "submitting the shard again")
                s.phase, s.file_id, s.batch_id, s.status, s.counts = WRITTEN, None, None, None, {}
                changed = moved = True
                continue
            if self.sched.observe(s, s.status, b):  # refused for the queue: it waits, nothing to collect
                changed = moved = True
                continue
            status = str(b.get("status"))
            raw = b.get("request_counts")
            counts = {k: v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}
            if status != s.status or counts != s.counts:
                moved = moved or status != s.status
                changed, s.status, s.counts = True, status, counts
                self.display.notice(f"batch {s.id} ({s.batch_id}): {status}, {format_counts(counts)}")
            if status in TERMINAL_STATES:
                before = (self.state.stats.tokens[0], self.state.stats.done)
                await settler.settle(s, b, self.prices.batch_price(s.model, b.get("created_at")))
                self.sched.queues.answered(s, self.state.stats.done - before[1], self.state.stats.tokens[0] - before[0])
                self.display.notice(f"batch {s.id}: collected ({status}){'; ' + s.note if s.note else ''}")
        if changed:
            self.out.save()
        self.display.update(self._figures())
        return moved

    async def _live(self, shard: Shard, url: str, key: ApiKey) -> bool:
        """Send a live shard; True when all its requests are answered."""
        self.display.notice(self.live_says.format(n=shard.requests, id=shard.id))
        self.out.save()
        return self._sent_live(shard, await send_live(self.cfg, self.state, shard, self.dir, self.out, url, key,
                                                      self._on_pipeline))

    def _sent_live(self, shard: Shard, stopped: StopReason | None) -> bool:
        """After a live shard's send: the run's stop kept (False), or the shard collected (True)."""
        if stopped is not None:
            self.stopped = self.stopped or stopped
            return False
        shard.phase = "collected"
        self.out.save()
        return True

    def _on_pipeline(self, pipe: Pipeline | None) -> None:
        self._pipe = pipe

    def signalled(self, reason: StopReason, again: bool) -> None:
        """A signal stops the run where it is: batches keep running at the provider."""
        if self.stopped is None:
            self.stopped = reason
            self.display.notice("stopping: the submitted batches keep running at the provider; collect "
                                f"them with: {resume_command(self.cfg.api_key)}")
        self._wake.set()
        if self._pipe is not None:
            self._pipe.stop(reason)

    def figures(self) -> ProgressFigures:
        return self._figures()

    def _figures(self) -> ProgressFigures:
        """Lines answered in running batches are not done until collected into the output: they are
        a figure of their own, so that done is what the summary counts."""
        running = [s for s in self.plan.open if s.phase == SUBMITTED]
        answered = sum(s.counts.get("completed", 0) + s.counts.get("failed", 0) for s in running)
        return job_figures(self.state, self.clock, self.cfg.simulate, rps=0.0, retries=0,
                           in_flight=sum(s.requests for s in running) - answered, in_batches=answered)

    def ended(self) -> None:
        if self.complete:  # every line is in the output: the shards have served
            shutil.rmtree(self.dir, ignore_errors=True)

    def sections(self, summ: dict[str, Any]) -> dict[str, Any]:
        """The summary, with each batch's state."""
        summ["batches"] = self.plan.rows()
        return summ

    def before_summary(self, summ: dict[str, Any]) -> None:
        warn_batch_prices(self.display, summ)

    def after_summary(self, summ: dict[str, Any]) -> None:
        next_step(self.cfg, self.display, self.plan, self.stopped)
