"""What `process --deadline` tells, from one source: the split of the job's records as it stands
(answered through batches / live; left in running batches / to send live / waiting to be
submitted), the expected finish, and the job's cost against the same tokens all live and all
through batches (each at its own price; None unknown).

`DeadlineRun` takes these figures for the progress display at each update and for the checkpoint
at each save (`"now"` in its `deadline` entry), so `status` reads exactly what was saved, and the
summary takes them once more at the end: display, status and summary count the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import JobStats
from batchrun.batch.plan import COLLECTED, CREATING, LIVE, SUBMITTED, UPLOADED, WRITTEN, Plan, Shard, ShardFiles
from batchrun.batch.shard import index_lines
from batchrun.records import Usage
from batchrun.route.when import iso_utc
from batchrun.store.state import JobState


@dataclass(frozen=True, slots=True)
class Split:
    """Where each of the job's records is. They add up to the job's total at every moment."""

    batch_done: int  # answered through the Batch API (a running batch's answered lines included)
    live_done: int  # answered live (failures after their attempts included)
    invalid: int  # bad input lines: sent nowhere
    in_batches: int  # unanswered in running batches
    live: int  # to be sent live: live shards' unsent lines, and cancelled batches' unanswered ones
    waiting: int  # in shards not yet submitted (the plan decides at each look where they go)
    flex_done: int = 0  # of live_done, answered at flex processing

    @property
    def left(self) -> int:
        """Records not yet answered on either path."""
        return self.in_batches + self.live + self.waiting


def _answered(s: Shard) -> int:
    return s.counts.get("completed", 0) + s.counts.get("failed", 0)


def split_of(plan: Plan, cancelled: Collection[str], done: int, invalid: int,
             live_answered: Callable[[Shard], int], flex_done: int = 0) -> Split:
    """The split from the plan and the lines written (`done`, `invalid`: the job's counts);
    `live_answered`: lines of a live shard that are already in the output. A line in the output
    that neither a live shard nor the input's bad lines account for came from a batch."""
    live_done = sum(s.requests for s in plan.shards if s.phase == COLLECTED and s.batch_id is None)
    live_shards = [s for s in plan.shards if s.phase == LIVE]
    live_done += sum(live_answered(s) for s in live_shards)
    submitted = [s for s in plan.shards if s.phase == SUBMITTED]
    return Split(
        batch_done=max(0, done - invalid - live_done) + sum(_answered(s) for s in submitted),
        live_done=live_done, invalid=invalid,
        in_batches=sum(max(0, s.requests - _answered(s)) for s in submitted if s.batch_id not in cancelled),
        live=sum(s.requests - live_answered(s) for s in live_shards)
        + sum(max(0, s.requests - _answered(s)) for s in submitted if s.batch_id in cancelled),
        waiting=sum(s.requests for s in plan.shards if s.phase in (WRITTEN, UPLOADED, CREATING)), flex_done=flex_done)


class LiveShards:
    """Lines of each live shard already in the output: counted from the done bitmap once (a rerun
    finds a shard half sent), then by what the pipeline answers while it sends the shard."""

    def __init__(self, directory: Path, state: JobState, flex_before: int = 0) -> None:
        self.dir, self.state = directory, state
        self.base: dict[str, int] = {}
        self._sending: tuple[str, int] | None = None  # the shard being sent, and the job's done then
        self._sent = 0  # answered live in this run, before the shard being sent
        self._at_flex = False  # the shard being sent goes at flex
        self._flex = flex_before  # answered at flex in this job, before the shard being sent

    @property
    def flex(self) -> int:
        """Records answered at flex in this job (the checkpoint keeps it with the lines it counts)."""
        return self._flex + (self.state.stats.done - self._sending[1] if self._sending and self._at_flex else 0)

    @property
    def sent(self) -> int:
        """Records answered live in this run (the progress line's rate)."""
        return self._sent + (self.state.stats.done - self._sending[1] if self._sending else 0)

    def sending(self, shard: Shard | None, flex: bool = False) -> None:
        """`shard` starts sending, at flex or not (None: it stopped)."""
        if shard is not None:
            self.answered(shard)  # its base counted before it sends
        self._sent, self._flex = self.sent, self.flex
        self._at_flex = flex
        self._sending = None if shard is None else (shard.id, self.state.stats.done)

    def answered(self, shard: Shard) -> int:
        """The shard's lines in the output."""
        if shard.id not in self.base:
            index = ShardFiles.of(self.dir, shard.id).index
            done = self.state.done
            self.base[shard.id] = sum(1 for line, _ in index_lines(index) if line in done) if index.exists() else 0
        now = self.state.stats.done - self._sending[1] if self._sending and self._sending[0] == shard.id else 0
        return min(shard.requests, self.base[shard.id] + now)


def figures_now(split: Split, at: float, finish: float, costs: dict[str, float | None]) -> dict[str, Any]:
    """The figures as the checkpoint keeps them (and the display and summary show them)."""
    return {"as_of": iso_utc(at), "expected_finish": None if finish == float("inf") else iso_utc(finish),
            "split": asdict(split), **costs}


def alternatives(stats: JobStats, prices: PriceBook) -> dict[str, float | None]:
    """The job's answered tokens priced all live and all at the batch price."""
    live: float | None = 0.0
    batch: float | None = 0.0
    for name, m in stats.models.items():
        usage = Usage(m.input_tokens, m.output_tokens)
        lp, bp = prices.price(name), prices.batch_price(name)
        lc, bc = (lp.cost(usage) if lp else None), (bp.cost(usage) if bp else None)
        live = None if live is None or lc is None else live + lc
        batch = None if batch is None or bc is None else batch + bc
    unknown = any(m.unpriced for m in stats.models.values())
    return {"cost_usd": None if unknown else round(stats.cost_usd, 8),
            "all_live_usd": None if live is None else round(live, 8),
            "all_batch_usd": None if batch is None else round(batch, 8)}


def deadline_summary(d: dict[str, Any], complete: bool, ended_at: float) -> dict[str, Any]:
    """The summary's and status's `deadline` section from the checkpoint's entry: what was
    decided (the plan, shards sent live instead, batches cancelled) and the figures last taken."""
    now = d.get("now") or {}
    split = now.get("split") or {}
    costs = {k: now[k] for k in ("cost_usd", "all_live_usd", "all_batch_usd") if k in now}
    return {"deadline": iso_utc(float(d["at"])), "given": d.get("given"), "plan": d.get("plan"),
            "as_of": now.get("as_of"), "expected_finish": now.get("expected_finish"), "split": split or None,
            "live": split.get("live_done", 0), "batch": split.get("batch_done", 0), "flex": split.get("flex_done", 0),
            "held_live": len(d.get("held", [])), "cancelled_batches": len(d.get("cancelled", [])),
            "why": d.get("why"), "met": (ended_at <= float(d["at"])) if complete else None, **costs}
