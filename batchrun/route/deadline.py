"""`--deadline`: which records go through the Batch API and which live, as pure decisions (times
are epoch seconds passed in; nothing here reads a clock or does I/O).

The model: the live path answers `live_rps` records a second from now on; batches answer
`batch_lps` lines a second across all of the job's batches, after `batch_overhead_s` (validation,
finalizing, collection) for a batch submitted now. With both prices known and the Batch API the
cheaper, as many records go to batches as they are expected to answer before the deadline less the
margin, and the rest live: the cheapest split that is expected to be on time. Otherwise (a price
unknown, or batches no cheaper) the plan is on time only: the split that finishes earliest. When
even that ends after the deadline the plan says so, with how long the job takes at full speed on
both paths, and runs that split.

Re-planning (`replan`) keeps the live share as small and as late as is safe: running batches keep
their lines while the live path could still answer what they are expected to leave unanswered;
when it could not wait for one more look, the shortfall goes live — shards not yet submitted
first (no cancel needed), then the unanswered part of running batches (cancelled; what they
answered before the cancel landed is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from batchrun.route.when import describe_in

# The cautious priors the README states, used until the job has seen better.
PRIOR_RPM = 500.0  # OpenAI's Tier 1 limit for gpt-4o-mini, the lowest paid tier
PRIOR_TPM = 200_000.0
PRIOR_BATCH_LPS = 50_000 / 3600  # a full batch (50,000 lines) answered per hour, across the job's batches
PRIOR_BATCH_OVERHEAD_S = 600.0  # validation and finalizing of a batch
LOOK_S = 10.0  # at most this long between two looks at the batches (the orchestrator's poll)


@dataclass(frozen=True, slots=True)
class Paths:
    """What is known of both paths. Costs are USD for all the records planned (None: no price)."""

    live_rps: float
    batch_lps: float
    batch_overhead_s: float = PRIOR_BATCH_OVERHEAD_S
    live_cost: float | None = None
    batch_cost: float | None = None
    queue_records: int | None = None  # records the enqueued-token limit lets wait in batches at once
    live_known: bool = False  # False: the prior (for the plan's words)
    batch_known: bool = False

    @property
    def on_cost(self) -> bool:
        """Plan for cost (both prices known, batches cheaper); else on time only."""
        return self.live_cost is not None and self.batch_cost is not None and self.batch_cost < self.live_cost

    def batch_pace(self) -> float:
        """Lines a second through batches; a queue limit makes each full queue wait its overhead."""
        if self.queue_records is None or self.batch_lps <= 0:
            return self.batch_lps
        q = max(1, self.queue_records)
        return q / (self.batch_overhead_s + q / self.batch_lps)

    def batch_by(self, seconds: float, overhead: bool = True) -> float:
        """Lines batches answer in `seconds` from now (for batches yet to submit: after their overhead)."""
        return max(0.0, seconds - (self.batch_overhead_s if overhead else 0.0)) * self.batch_pace()


def live_rate(rpm: float | None, tpm: float | None, tokens_per_record: float) -> float:
    """Records a second the live path sustains at these limits; with neither known, the priors
    (a limit the user states is the one they know of: the other is not assumed)."""
    if rpm is None and tpm is None:
        rpm, tpm = PRIOR_RPM, PRIOR_TPM
    per_min = min(rpm or float("inf"), (tpm or float("inf")) / max(1.0, tokens_per_record))
    return per_min / 60.0


@dataclass(frozen=True, slots=True)
class DeadlinePlan:
    """The split and what it is expected to give."""

    records: int
    to_batch: int
    to_live: int
    now: float
    deadline: float
    finish_at: float  # expected
    impossible: bool
    full_speed_s: float  # how long the records take at full speed on both paths
    cost_usd: float | None
    all_live_usd: float | None
    all_batch_usd: float | None
    all_batch_finish_at: float
    on_cost: bool

    def says(self) -> str:
        """The plan in one sentence."""
        if self.impossible:
            return (f"at the known limits this takes about {describe_in(self.full_speed_s)}; the deadline is in "
                    f"{describe_in(self.deadline - self.now)}: running at full speed on both paths")
        return (f"{self.to_batch} record(s) through the Batch API and {self.to_live} live, expected to finish "
                f"in {describe_in(self.finish_at - self.now)} (deadline in {describe_in(self.deadline - self.now)})")


def fastest_split(n: int, paths: Paths, overhead: bool = True) -> tuple[int, float]:
    """(records to batches, seconds) of the split that finishes `n` records earliest."""
    r, b = paths.live_rps, paths.batch_pace()
    o = paths.batch_overhead_s if overhead else 0.0
    if n <= 0:
        return 0, 0.0
    if b <= 0 or (r > 0 and n / r <= o):
        return 0, (n / r if r > 0 else float("inf"))
    if r <= 0:
        return n, o + n / b
    t = (n + b * o) / (b + r)
    to_batch = min(n, int(b * (t - o)))
    return to_batch, max(o + to_batch / b, (n - to_batch) / r)


def plan(n: int, now: float, deadline: float, margin_s: float, paths: Paths) -> DeadlinePlan:
    """The split of `n` records left, decided at `now`."""
    avail = deadline - margin_s - now
    fast_batch, full_speed = fastest_split(n, paths)
    impossible = now + full_speed > deadline
    if impossible or not paths.on_cost:
        to_batch = fast_batch
    else:
        to_batch = min(n, int(paths.batch_by(avail)))
        if (n - to_batch) > paths.live_rps * avail:  # the margin cannot be kept: on time at least
            to_batch = max(to_batch, fast_batch)
    return _planned(n, to_batch, now, deadline, impossible, full_speed, paths)


def _planned(n: int, to_batch: int, now: float, deadline: float, impossible: bool, full_speed: float,
             paths: Paths, overhead: bool = True) -> DeadlinePlan:
    to_live = n - to_batch
    pace = paths.batch_pace()
    o = paths.batch_overhead_s if overhead else 0.0
    batch_s = (o + to_batch / pace) if to_batch and pace > 0 else (0.0 if not to_batch else float("inf"))
    live_s = to_live / paths.live_rps if to_live and paths.live_rps > 0 else (0.0 if not to_live else float("inf"))
    return DeadlinePlan(
        records=n, to_batch=to_batch, to_live=to_live, now=now, deadline=deadline,
        finish_at=now + max(batch_s, live_s), impossible=impossible, full_speed_s=full_speed,
        cost_usd=_cost(paths, to_batch, to_live, n), all_live_usd=paths.live_cost, all_batch_usd=paths.batch_cost,
        all_batch_finish_at=now + (o + n / pace if pace > 0 else float("inf")), on_cost=paths.on_cost)


def _cost(paths: Paths, to_batch: int, to_live: int, n: int) -> float | None:
    if n == 0:
        return 0.0
    parts = [(to_batch, paths.batch_cost), (to_live, paths.live_cost)]
    if any(k and c is None for k, c in parts):
        return None
    return sum(k * (c or 0.0) / n for k, c in parts)


@dataclass(frozen=True, slots=True)
class Running:
    """A batch at the provider: its lines, and how many are answered (completed + failed)."""

    id: str
    lines: int
    answered: int

    @property
    def unanswered(self) -> int:
        """Lines still to come."""
        return max(0, self.lines - self.answered)


@dataclass(frozen=True, slots=True)
class Moves:
    """What a re-plan decided: shards to submit now, shards to send live instead, batches to cancel
    (their unanswered lines go live once the cancel has landed and the answered ones are kept)."""

    submit: tuple[str, ...]
    hold: tuple[str, ...]
    cancel: tuple[str, ...]
    shortfall: int  # lines the batches are expected to leave unanswered by the deadline less the margin
    impossible: bool


def replan(now: float, deadline: float, margin_s: float, paths: Paths, live_left: int,
           running: tuple[Running, ...], waiting: tuple[tuple[str, int], ...], look_s: float = LOOK_S) -> Moves:
    """The moves at `now`: `live_left` records the live path holds unanswered, `running` batches,
    `waiting` shards (id, lines) not yet submitted, in the order they would be submitted; `look_s`:
    the longest until the next look (a cancel decided then must still leave live the time)."""
    avail = deadline - margin_s - now
    live_room = paths.live_rps * max(0.0, avail - look_s)  # what live can still take if it waits one more look
    live_cap = paths.live_rps * max(0.0, deadline - now)  # live at full speed up to the deadline itself
    running_left = sum(b.unanswered for b in running)
    # Until the batches' pace is seen nothing is counted on from them. Running batches need no new
    # overhead: only finalizing and collection, a third of it.
    deliver = (paths.batch_by(avail, overhead=False) - paths.batch_pace() * paths.batch_overhead_s / 3
               if paths.batch_known else 0.0)
    shortfall = max(0, int(running_left - max(0.0, deliver)))
    room, backlog = max(0.0, deliver - running_left), live_left + shortfall
    submit, hold = [], []
    for sid, lines in waiting:
        if paths.batch_known and lines <= paths.batch_by(avail) and lines <= room:
            submit.append(sid)  # expected answered in time
            room -= lines
        elif not paths.batch_known and backlog + lines <= live_room:
            submit.append(sid)  # a try: the live path could still take it over
            backlog += lines
        else:
            hold.append(sid)
    held = sum(lines for sid, lines in waiting if sid in hold)
    while hold and live_left + held + shortfall > live_cap:  # live cannot take them: batches still add pace
        sid = hold.pop()
        submit.append(sid)
        held -= dict(waiting)[sid]
    impossible = live_left + held + shortfall > live_cap
    cancel: list[str] = []
    if shortfall and live_left + held + shortfall >= live_room:  # no time to wait for another look
        take = live_cap
        if paths.batch_known:  # past what the deadline allows (missed, or never possible): live's share of
            # the fastest finish, both paths at full speed; else live idles while slow batches trickle
            both = paths.live_rps + paths.batch_pace()
            take = max(take, paths.live_rps * (live_left + held + running_left) / both if both > 0 else 0.0)
        cancel = _cover(running, min(shortfall, max(0, int(take) - live_left - held)))
    order = [sid for sid, _ in waiting]
    return Moves(tuple(sorted(submit, key=order.index)), tuple(hold), tuple(cancel), shortfall, impossible)


def _cover(running: tuple[Running, ...], need: int) -> list[str]:
    """The batches to cancel whose unanswered lines cover `need` with as few extra as may be."""
    left = [b for b in running if b.unanswered > 0]
    chosen: list[str] = []
    while need > 0 and left:
        fits = [b for b in left if b.unanswered >= need]
        pick = min(fits, key=lambda b: b.unanswered) if fits else max(left, key=lambda b: b.unanswered)
        chosen.append(pick.id)
        need -= pick.unanswered
        left.remove(pick)
    return chosen


def expected_finish(now: float, paths: Paths, live: int, in_batches: int, waiting: int) -> float:
    """When what is left is expected to be answered: `live` records at the live rate, the lines
    `in_batches` at the batches' pace plus their finalizing (a third of the overhead, as `replan`
    counts it), `waiting` shards through batches after a whole overhead; never later than the live
    path taking it all over, which re-planning does to batches that would end late. Infinite when
    no path moves."""
    if live + in_batches + waiting == 0:
        return now
    r, pace, o = paths.live_rps, paths.batch_pace(), paths.batch_overhead_s
    inf = float("inf")
    live_s = live / r if r > 0 else (inf if live else 0.0)
    batch_s = 0.0
    if in_batches:
        batch_s = in_batches / pace + o / 3 if pace > 0 else inf
    if waiting:
        batch_s = max(batch_s, o + (in_batches + waiting) / pace if pace > 0 else inf)
    takeover_s = (live + in_batches + waiting) / r if r > 0 else inf
    return now + min(max(live_s, batch_s), takeover_s)
