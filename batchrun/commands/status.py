"""`batchrun status`: what the checkpoint says of a job, read-only."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from batchrun.batch.plan import Plan
from batchrun.batch.scheduling.queue import Queues
from batchrun.errors import InputError, JobError, StopReason
from batchrun.job.batch_api.deadline_figures import deadline_summary
from batchrun.results.shadow_file import read_shadow
from batchrun.store.files import shadow_path
from batchrun.store.identity import fingerprint
from batchrun.store.lock import lock_holder, lock_path
from batchrun.store.recovery import recover_output
from batchrun.store.state import JobState, checkpoint_path, load_state


def job_status(input_path: Path, output: Path, part: str | None = None) -> dict[str, Any]:
    """What the checkpoint says of a job, read-only: done, failed, remaining, spend, last run
    (`part`: the --part K/N asked for, named even before that part has started)."""
    _check_input(input_path, output)
    state = load_state(checkpoint_path(output))
    base: dict[str, Any] = {"input": str(input_path), "output": str(output), **({"part": part} if part else {})}
    if state is None:
        return {**base, "state": "not_started", "resumable": False}
    problem = None
    try:
        recover_output(output, state, repair=False)
    except JobError as e:
        problem = e.message
    if not input_path.is_file():
        input_ok = False
    else:
        part = state.input_fingerprint.get("part_bytes")  # a part's job fingerprints its bytes only
        input_ok = fingerprint(input_path, tuple(part) if part else None)[0] == state.input_fingerprint
    holder = lock_holder(lock_path(output))
    st = state.stats
    last = dict(state.last_run)
    status = last.get("status", "unknown")
    if holder is not None:
        state_name = "running"
    elif status == "complete":
        state_name = "complete"
    elif status == "running":
        state_name = "killed"  # no clean stop was recorded: kill -9, crash or power loss
        last["status"] = "killed (no clean stop was recorded)"
    else:
        state_name = "stopped"
    total = state.total
    tin, tout = st.tokens
    return {
        **base,
        **({"part": state.identity["part"]} if state.identity.get("part") else {}),  # --part K/N
        "state": state_name,
        "active_pid": holder,
        "records": {
            "total": total,
            "done": st.done,
            "succeeded": st.succeeded,
            "failed": st.failed,
            "invalid": st.invalid,
            "remaining": None if total is None else max(0, total - st.done),
        },
        "input_tokens": tin,
        "output_tokens": tout,
        **_costs(state, output),
        "rate_limited": sum(m.rate_limited for m in st.models.values()),
        **_canary(state), **_batches(state.batch), **_deadline(state),
        "rate_limit_wait_s": round(state.rate_limit_wait_s, 1),
        "runs": state.runs,
        "elapsed_s": round(state.elapsed_s, 1),
        "last_run": last,
        "input_unchanged": input_ok,
        "problem": problem,
        "resumable": state_name in ("stopped", "killed") and input_ok and problem is None,
        "next": _next_step(state_name, status, st.failed, input_ok and problem is None, last.get("command")),
    }


def _check_input(input_path: Path, output: Path) -> None:
    """Raise InputError unless there is an input file or a checkpoint to read."""
    if input_path.is_dir():
        raise InputError(f"input {input_path} is a directory, not a file; give the job's JSONL input file")
    if not input_path.is_file() and not checkpoint_path(output).exists():
        raise InputError(f"input file {input_path} does not exist, and no job's checkpoint is beside "
                         f"{output}; check the path (and -o if the job wrote elsewhere)")


def _next_step(state_name: str, status: str, failed: int, sound: bool, command: str | None = None) -> str | None:
    """What to do next, in words, for the person reading `status` (the command that goes on, where the
    last run recorded it: never one that starts the job over)."""
    if not sound or state_name == "running":
        return None
    if state_name == "complete":
        return f"{failed} record(s) failed: rerun with --retry-failed to send them again" if failed else None
    again = f"run {command}" if command else "run the same process command (without --fresh)"
    if status.endswith(StopReason.BATCHES_RUNNING):
        return f"provider batches are still running: {again} again later to collect them"
    if status.endswith(StopReason.BUDGET):
        return f"the --max-cost cap was reached: raise --max-cost and {again} to go on"
    if status.endswith((StopReason.AUTH, StopReason.QUOTA)):
        return f"the key was refused or the account is out of quota: fix that, then {again}"
    return f"{again} again to resume"


def _batches(saved: dict[str, Any]) -> dict[str, Any]:
    """A --batch-api job's batches as the checkpoint last saw them (their state and request counts)."""
    plan = Plan.from_state(saved)
    if plan is None:
        return {"batches": []}
    return {"batches": plan.rows(), "batch_queues": Queues(plan.queues).rows(plan.shards)}


def _costs(state: JobState, output: Path) -> dict[str, Any]:
    """Cost so far: everything billed, the shadow's answers (in their own file) included, and its split."""
    st = state.stats
    costs: dict[str, Any] = {
        "total_cost_usd": round(st.cost_usd, 8), "cost_split_usd": st.split_usd(),
        "unpriced_models": sorted(n for n, m in st.models.items() if m.unpriced or m.unmetered)}
    shadow = read_shadow(shadow_path(output))
    if shadow is not None:
        shadow.add_cost(costs)
    return {"cost_usd": costs.pop("total_cost_usd"), **costs}


def _canary(state: JobState) -> dict[str, Any]:
    """The canary's saved state with both arms side by side, where a canary ran."""
    if not state.canary:
        return {}
    arms = state.arms
    return {"canary": {**state.canary, "baseline": arms.baseline.figures(), "canary": arms.canary.figures()}}


def _deadline(state: JobState) -> dict[str, Any]:
    """A --deadline job's deadline, plan, split and costs as the run last saved them (the same
    figures its progress line showed then)."""
    if not state.deadline:
        return {}
    complete = state.last_run.get("status") == "complete"
    ended = state.last_run.get("ended")
    at = datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp() if complete and ended else 0.0
    return {"deadline": deadline_summary(state.deadline, complete, at)}
