"""`--notify`: which job events become notifications, and what each says.

`run_notified` wraps a whole `process` run (live or Batch API): the notifier posts while it runs,
and the job's end (complete, or stopped with its exit code and how to resume) is the last event.
During the run, `watch_canary` hooks the canary's changes and `BudgetWatch` the spend against
`--max-cost`; other steps raise their own events through `send.notify.notify`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from batchrun.config import RunConfig
from batchrun.errors import BatchrunError, ExitCode, StopReason, run_exit_code
from batchrun.job.outcome import Outcome
from batchrun.job.resume import resume_command
from batchrun.records import Result
from batchrun.route.plan import Planner
from batchrun.secret import redact_text
from batchrun.send.notify import (
    BUDGET,
    CANARY_PROMOTED,
    CANARY_ROLLED_BACK,
    JOB_COMPLETE,
    JOB_STOPPED,
    RAMP_STEP,
    Notifier,
)
from batchrun.show.console import Display
from batchrun.store.state import JobState

RESUME = "run the same command again to resume"


def make_notifier(cfg: RunConfig, display: Display) -> Notifier | None:
    """The job's notifier, when --notify, BATCHRUN_NOTIFY_URL or `[notify] url` names one."""
    n = cfg.notify
    if n.url is None:
        return None
    return Notifier(n.url, n.on, display.warn, scrub=lambda s: redact_text(s, cfg.api_key))


async def run_notified(cfg: RunConfig, display: Display,
                       run: Callable[[RunConfig, Display, Notifier | None], Awaitable[Outcome]]) -> Outcome:
    """`run(cfg, display, notifier)`, with its end posted: complete, or stopped and why."""
    notifier = make_notifier(cfg, display)
    if notifier is None:
        return await run(cfg, display, None)
    job = cfg.output.name
    async with notifier.running():
        try:
            outcome = await run(cfg, display, notifier)
        except BatchrunError as e:
            _stopped(notifier, job, int(e.exit_code), e.message,
                     "fix what the message says, then " + RESUME if e.exit_code == ExitCode.USAGE else RESUME)
            raise
        code = int(run_exit_code(outcome.stopped, outcome.all_ok))
        if outcome.stopped is not None:
            why = outcome.summary.get("job", {}).get("stopped") or str(outcome.stopped)
            # the command that goes on (a budget stop's with a higher cap: the same one stops again)
            more = 2 * cfg.max_cost if outcome.stopped is StopReason.BUDGET and cfg.max_cost else None
            _stopped(notifier, job, code, f"stopped: {why}", "to go on, run: " + resume_command(cfg.api_key,
                                                                                          max_cost=more))
        else:
            _complete(notifier, job, code, outcome.summary)
    return outcome


def _stopped(notifier: Notifier, job: str, code: int, reason: str, resume: str) -> None:
    notifier.notify(JOB_STOPPED, f"batchrun {job}: {reason} (exit {code}); {resume}",
                    job=job, exit_code=code, reason=reason, resume=resume)


def _complete(notifier: Notifier, job: str, code: int, summ: dict[str, Any]) -> None:
    recs, el, cost = summ.get("records", {}), summ.get("job", {}).get("elapsed_s"), summ.get("total_cost_usd")
    failed = recs.get("failed", 0) + recs.get("invalid", 0)
    shown = f"${cost:.4f}" if isinstance(cost, int | float) else "unknown"
    notifier.notify(JOB_COMPLETE, f"batchrun {job}: complete, {recs.get('total', 0)} records, {failed} failed, "
                    f"cost {shown}, {el}s (exit {code})", job=job, exit_code=code, records=recs.get("total", 0),
                    succeeded=recs.get("succeeded", 0), failed=failed, cost_usd=cost,
                    unpriced_models=summ.get("unpriced_models", []), duration_s=el)


def watch_canary(planner: Planner | None, notifier: Notifier | None, state: JobState, job: str) -> None:
    """Post the canary's rollback, promotion and ramp steps as the planner makes them."""
    c = planner.canary if planner is not None else None
    if planner is None or c is None or notifier is None:
        return
    from batchrun.route.canary import PROMOTED, ROLLED_BACK  # loaded with the canary itself

    inner, seen = planner.on_change, [c.state, c.share]

    def changed() -> None:
        if inner is not None:
            inner()
        if [c.state, c.share] == seen:
            return
        seen[:] = [c.state, c.share]
        figures = {"job": job, "model": c.config.model, "share": c.share, "reason": c.reason, "at": c.changed_at,
                   "judged": c.judged, "canary": state.arms.canary.figures(),
                   "baseline": state.arms.baseline.figures()}
        if c.state == ROLLED_BACK:
            notifier.notify(CANARY_ROLLED_BACK, f"batchrun {job}: canary {c.config.model} rolled back: {c.reason}; "
                            "its records go to the baseline", **figures)
        elif c.state == PROMOTED:
            notifier.notify(CANARY_PROMOTED, f"batchrun {job}: canary {c.config.model} promoted: {c.reason}",
                            **figures)
        else:
            notifier.notify(RAMP_STEP, f"batchrun {job}: canary {c.config.model} ramped up to {c.share:.0%} of "
                            f"records after {c.judged} healthy answers", **figures)

    planner.on_change = changed


class BudgetWatch:
    """After each written line: the spend passing a share of --max-cost is posted, once per share
    (shares passed in an earlier run of the job are not posted again)."""

    def __init__(self, notifier: Notifier, cap: float, shares: tuple[float, ...], spent: Callable[[], float],
                 job: str) -> None:
        self.notifier, self.cap, self.spent, self.job = notifier, cap, spent, job
        self.left = [s for s in shares if spent() < s * cap]

    def __call__(self, _result: Result) -> None:
        if not self.left:
            return
        spent = self.spent()
        while self.left and spent >= self.left[0] * self.cap:
            share = self.left.pop(0)
            self.notifier.notify(BUDGET, f"batchrun {self.job}: spent ${spent:.4f}, over {share:.0%} of --max-cost "
                                 f"${self.cap:g}", job=self.job, share=share, spent_usd=round(spent, 6),
                                 max_cost_usd=self.cap)


def after_each(*hooks: Callable[[Result], None] | None) -> Callable[[Result], None] | None:
    """The pipeline's one after-write hook, calling each given one in turn."""
    given = [h for h in hooks if h is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def each(result: Result) -> None:
        for h in given:
            h(result)

    return each
