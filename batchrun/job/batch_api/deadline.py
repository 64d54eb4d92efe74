"""`process --deadline`: the Batch API flow (job/batch_api/batch_job) with the deadline planner deciding, at
each look, which shards to submit, which to send live instead, and which running batches to
cancel so that the live path takes what they would leave unanswered.

What goes live is only ever a live shard: a shard never submitted, or the unanswered lines of a
batch that has ended (cancelled, expired) and been collected, which `batch.settle` places once the
batch's answered lines are written. So a line answered in a batch is never also sent live, and
after kill -9 at any moment the rerun finds every shard where the checkpoint left it: a cancel
sent but not collected is collected on the next look, as any ended batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from batchrun.batch.api import BatchApi
from batchrun.batch.plan import CREATING, LIVE, SUBMITTED, UPLOADED, WRITTEN
from batchrun.batch.poll import PollBackoff
from batchrun.batch.settle import Settler
from batchrun.batch.submit import Submitter
from batchrun.config import RunConfig
from batchrun.errors import ConfigError, FatalRequestError, RequestError
from batchrun.job.batch_api.batch_job import BatchRun, run_batch_job
from batchrun.job.batch_api.deadline_figures import (
    LiveShards,
    alternatives,
    deadline_summary,
    figures_now,
    split_of,
)
from batchrun.job.batch_api.deadline_flex import CUT, FlexPath, send_flex
from batchrun.job.batch_api.deadline_parts import look_s, queue_lets, queue_records, shard_size
from batchrun.job.outcome import Outcome
from batchrun.route.batch_pace import BatchPace
from batchrun.route.deadline import (
    PRIOR_BATCH_LPS,
    PRIOR_BATCH_OVERHEAD_S,
    Paths,
    Running,
    expected_finish,
    live_rate,
    plan,
    replan,
)
from batchrun.route.when import DEFAULT_MARGIN, deadline_at, describe_in, fix_deadline, iso_utc
from batchrun.secret import ApiKey
from batchrun.show.console import Display
from batchrun.show.deadline import deadline_lines, progress_line
from batchrun.show.progress import ProgressFigures
from batchrun.store.opening import JobFiles
from batchrun.store.state import JobState, checkpoint_path


async def run_deadline_job(cfg: RunConfig, display: Display, notifier: object = None) -> Outcome:
    """Run a job against its deadline, through the Batch API flow with the planner deciding (its start
    and end are posted by `run/alerts`; `notifier` is taken for that call's shape)."""
    if cfg.routing.route or cfg.routing.canary or cfg.routing.shadow:  # per live request: batches have none
        raise ConfigError("--deadline does not take [route], [canary] or [shadow] from the config (each is a "
                          "decision per live request, and part of the job goes through batches)")
    if cfg.no_wait:
        raise ConfigError("--deadline with --no-wait: a deadline's plan is kept by looking at the batches "
                          "often; run without --no-wait")
    if cfg.deadline is not None and (cfg.fresh or not checkpoint_path(cfg.output).exists()):
        deadline_at(cfg.deadline, time.time())  # a new job's deadline gone by: refused before any file is made
    size = shard_size(cfg.input)
    cfg = dataclasses.replace(cfg, batch_api=True, batch_expired="live", batch_size=min(cfg.batch_size, size))
    outcome = await run_batch_job(cfg, display, DeadlineRun)
    display.lines(deadline_lines(outcome.summary["deadline"]))
    return outcome


class DeadlineRun(BatchRun):
    """A Batch API run whose loop asks the planner what to submit, hold back or cancel."""

    live_says = "deadline: sending the {n} request(s) of shard {id} through the live API"  # not --batch-expired's

    def __init__(self, cfg: RunConfig, display: Display, state: JobState, files: JobFiles) -> None:
        super().__init__(cfg, display, state, files)
        now = time.time()
        state.deadline, note = fix_deadline(state.deadline, cfg.deadline, now)
        if note:
            display.warn(note)
        assert state.deadline is not None
        d = state.deadline
        d.setdefault("cancelled", [])
        self.at = float(d["at"])
        self.margin = (cfg.deadline_margin or DEFAULT_MARGIN).of(self.at - float(d.get("set_at", now)))
        self.pace = BatchPace()
        self.live_seen: float | None = None  # records a second the live path reached
        self.live_shards = LiveShards(self.dir, state, int(d.get("flex_done", 0)))
        self.flex = FlexPath(cfg, cfg.price_book())

    def _paths(self) -> Paths:
        lps, over = self.pace.lines_per_s(), self.pace.overhead_s()
        rps = live_rate(self.cfg.rpm, self.cfg.tpm, self.cfg.default_max_output + 200)
        return Paths(live_rps=max(rps, self.live_seen or 0.0), batch_lps=lps or PRIOR_BATCH_LPS,
                     batch_overhead_s=PRIOR_BATCH_OVERHEAD_S if over is None else over,
                     queue_records=queue_records(self.sched.queues, self.plan),
                     live_known=self.cfg.rpm is not None or self.cfg.tpm is not None, batch_known=lps is not None)

    def _say_plan(self) -> None:
        """The first line of the run: the plan at what is known, or the deadline it cannot keep."""
        now = time.time()
        left = sum(s.requests for s in self.plan.open)
        if not left:
            return
        paths = self._paths()
        p = plan(left, now, self.at, self.margin, paths)
        self.state.deadline = {**(self.state.deadline or {}), "plan": p.says()}
        say = self.display.warn if p.impossible else self.display.notice  # impossible: said even with --quiet
        prior = "" if paths.live_known else " (live at the cautious prior until it is seen; --rpm/--tpm state it)"
        say(f"--deadline {iso_utc(self.at)} (in {describe_in(self.at - now)}): " + p.says() + prior
            + "; batches are tried first where the live path could still take them over"
            + (f"; flex offered by {', '.join(sorted(self.flex.offered))}: what goes live goes at flex while the "
               "standard tier could take it over" if self.flex.offered else ""))
        self.out.save()

    async def _loop(self, apis: Mapping[str | None, BatchApi], settler: Settler, url: str, key: ApiKey) -> None:
        # the planner, not the queue's scheduler, decides what to submit (the queue limit is not yet in its plan)
        submitter = self.sched.submitter
        self._say_plan()
        backoff = PollBackoff()
        while self.stopped is None:
            await self._replan(apis, submitter)
            for s in [s for s in self.plan.open if s.phase == LIVE]:
                if self.stopped is not None or not await self._timed_live(s, url, key):
                    return
            moved = await self._poll(apis, settler)
            self._look()
            if not self.plan.open:
                return
            if any(s.phase in (WRITTEN, UPLOADED, CREATING, LIVE) for s in self.plan.open):
                continue
            with contextlib.suppress(TimeoutError):
                await _wait(self._wake, min(backoff.next_s(moved), look_s(self.at - time.time())))

    def _look(self) -> None:
        cancelled = set(self.state.deadline["cancelled"]) if self.state.deadline else set()
        answered = sum(s.counts.get("completed", 0) + s.counts.get("failed", 0) for s in self.plan.shards
                       if s.batch_id is not None)
        running = any(s.phase == SUBMITTED and s.batch_id not in cancelled
                      and s.counts.get("completed", 0) + s.counts.get("failed", 0) < s.requests
                      for s in self.plan.open)
        self.pace.look(time.time(), answered, running)

    async def _replan(self, apis: Mapping[str | None, BatchApi], submitter: Submitter) -> None:
        assert self.state.deadline is not None
        cancelled: list[str] = self.state.deadline["cancelled"]
        running = tuple(Running(s.id, s.requests, s.counts.get("completed", 0) + s.counts.get("failed", 0))
                        for s in self.plan.open if s.phase == SUBMITTED and s.batch_id not in cancelled)
        live_left = split_of(self.plan, set(cancelled), 0, 0, self.live_shards.answered).live
        waiting = tuple((s.id, s.requests) for s in self.plan.open if s.phase in (WRITTEN, UPLOADED))
        now, paths = time.time(), self._paths()
        moves = replan(now, self.at, self.margin, paths, live_left, running, waiting, 3 * look_s(self.at - now))
        by_id = {s.id: s for s in self.plan.shards}
        # Never submitted: sent live as it is, no cancel needed; one at a time, as the live path
        # sends them in turn and the next look knows the rate it reached.
        for sid in moves.hold[:1]:
            by_id[sid].phase = LIVE
            self._decided("held", sid, f"shard {sid} ({by_id[sid].requests} request(s)) goes live instead of into a "
                          "batch: batches are not expected to answer it in time")
        if moves.hold:
            self.out.save()
        for sid in moves.cancel:
            await self._cancel(apis, by_id[sid])
        if moves.cancel:
            names = ", ".join(f"{by_id[sid].id} ({by_id[sid].batch_id})" for sid in moves.cancel)
            self._decided(None, None, f"batches are expected to leave {moves.shortfall} line(s) unanswered in time: "
                          f"cancelled {names}; their answered lines are kept, the rest go live")
        self.sched.split_oversized()
        lets = queue_lets(self.sched.queues, self.plan, moves.submit, time.time())
        for s in [s for s in self.plan.open if s.phase == CREATING or s.id in lets]:
            if self.stopped is not None:
                return
            await submitter.submit(s)
            self.pace.submitted(time.time())
            self.display.notice(f"batch {s.id}: {s.requests} request(s) to {s.model} submitted as {s.batch_id}")

    def _now(self) -> dict[str, Any]:
        """The figures as they stand (one source for the display, the checkpoint and the summary)."""
        d = self.state.deadline or {}
        st, now, paths = self.state.stats, time.time(), self._paths()
        split = split_of(self.plan, set(d.get("cancelled", [])), st.done, st.invalid, self.live_shards.answered,
                         self.live_shards.flex)
        d["flex_done"] = split.flex_done
        finish = expected_finish(now, paths, split.live, split.in_batches, split.waiting)
        return figures_now(split, now, finish, alternatives(st, self.prices))

    def state_bytes(self) -> bytes:
        """The checkpoint, with the figures as they stand (what `status` shows)."""
        if self.state.deadline is not None and getattr(self, "sched", None) is not None:  # from the first look on
            self.state.deadline["now"] = self._now()
        return super().state_bytes()

    def _decided(self, kind: str | None, sid: str | None, why: str) -> None:
        """A move, said as it is made and kept (with its reason) for the summary and status."""
        assert self.state.deadline is not None
        if kind is not None:
            self.state.deadline.setdefault(kind, []).append(sid)
        self.state.deadline["why"] = why
        self.display.notice("deadline: " + why)

    async def _cancel(self, apis: Mapping[str | None, BatchApi], shard: Any) -> None:
        """Cancel a slow batch: its answered lines are collected when it ends, the rest go live."""
        assert self.state.deadline is not None and shard.batch_id is not None
        self.state.deadline["cancelled"].append(shard.batch_id)
        self.out.save()  # the decision is on disk before the cancel is sent
        try:
            await apis[shard.provider].cancel(shard.batch_id)
        except RequestError as e:  # a batch that ended meanwhile cannot be cancelled (OpenAI: 409): collect it
            if not isinstance(e, FatalRequestError) and e.status != 409:
                raise

    async def _timed_live(self, shard: Any, url: str, key: ApiKey) -> bool:
        started, before = time.monotonic(), self.state.stats.done
        flex = self._at_flex(shard)
        self.live_shards.sending(shard, flex)
        ticker = asyncio.create_task(self._tick()) if self.display.shows_progress else None
        try:
            ok = await (self._flex(shard, url, key) if flex else self._live(shard, url, key))
        finally:
            self.live_shards.sending(None)
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
        took, sent = time.monotonic() - started, self.state.stats.done - before
        if sent >= 50 and took > 0 and not flex:  # flex is slower: not the live path's rate
            self.live_seen = max(self.live_seen or 0.0, sent / took)
        return ok

    def _flex_look(self) -> tuple[float, float, int, float, float]:
        """What a flex send's watch weighs: now, the aim, records left to send live, the live rate."""
        now, d = time.time(), self.state.deadline or {}
        left = split_of(self.plan, set(d.get("cancelled", [])), 0, 0, self.live_shards.answered).live
        return now, self.at - self.margin, left, self._paths().live_rps, look_s(self.at - now)

    def _at_flex(self, shard: Any) -> bool:
        """Whether a live shard goes at flex: cheaper there, and the standard tier could still take
        every live record over after one more look (a shard flex gave way on goes standard)."""
        return (self.flex.cheaper(shard) and shard.id not in (self.state.deadline or {}).get("flex_cut", [])
                and self.flex.fits(shard, self._flex_look()))

    async def _flex(self, shard: Any, url: str, key: ApiKey) -> bool:
        """Send a live shard at flex; True when all is answered, or flex gave way to the standard tier."""
        self.display.notice(f"deadline: shard {shard.id} ({shard.requests} request(s)) goes live at flex "
                            "(service_tier \"flex\": cheaper, slower) while the standard tier could take it over")
        self.out.save()
        stopped = await send_flex(self.flex, shard, self, url, key, self._flex_look)
        if stopped == CUT and self.stopped is None:
            self._decided("flex_cut", shard.id, f"flex gave way on shard {shard.id}: the standard tier takes the "
                          "rest, or the deadline would not be kept")
            self.out.save()
            return True
        return self._sent_live(shard, stopped)

    async def _tick(self) -> None:
        """While a live shard sends, the display goes on (the batches' looks wait for it)."""
        while True:
            await asyncio.sleep(self.display.interval_s)
            self.display.update(self._figures())

    def sections(self, summ: dict[str, Any]) -> dict[str, Any]:
        """The summary, with what the deadline decided and what it cost against both alternatives
        (the figures the last progress line and the checkpoint show)."""
        summ = super().sections(summ)
        d = self.state.deadline or {}
        if getattr(self, "sched", None) is not None:
            d["now"] = self._now()
        summ["deadline"] = deadline_summary(d, summ["job"]["complete"], time.time())
        return summ

    def _figures(self) -> ProgressFigures:
        """The running figures, led by the deadline's line."""
        base = super()._figures()
        if self.state.deadline is None or getattr(self, "sched", None) is None:
            return base
        now = self._now()
        sp = now["split"]
        done = sp["batch_done"] + sp["live_done"] + sp["invalid"]
        el = self.clock.elapsed_this_run()
        # done counts what batches answered and the deadline's line says what they hold: in flight
        # is the live requests, and "answered in batches, to collect" would count them twice
        in_flight = self._pipe.statistics().in_flight if self._pipe is not None else 0
        return dataclasses.replace(base, done=done, routing=progress_line(self.at, now), in_flight=in_flight,
                                   in_batches=0, rps=self.live_shards.sent / el if el > 0 else 0.0)


async def _wait(event: Any, seconds: float) -> None:
    await asyncio.wait_for(event.wait(), seconds)
