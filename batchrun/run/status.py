"""`batchrun status`: what the checkpoint says of a job, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchrun.batch.plan import Plan
from batchrun.errors import InputError, JobError, StopReason
from batchrun.store.identity import fingerprint
from batchrun.store.lock import lock_holder, lock_path
from batchrun.store.recovery import recover_output
from batchrun.store.state import JobState, checkpoint_path, load_state


def job_status(input_path: Path, output: Path) -> dict[str, Any]:
    """What the checkpoint says of a job, read-only: done, failed, remaining, spend, last run."""
    _check_input(input_path, output)
    state = load_state(checkpoint_path(output))
    base: dict[str, Any] = {"input": str(input_path), "output": str(output)}
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
        input_ok = fingerprint(input_path)[0] == state.input_fingerprint
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
        "cost_usd": round(st.cost_usd, 8),
        "unpriced_models": sorted(n for n, m in st.models.items() if m.unpriced or m.unmetered),
        "rate_limited": sum(m.rate_limited for m in st.models.values()),
        **_canary(state), **_batches(state.batch),
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
    return {"batches": [] if plan is None else plan.rows()}


def _canary(state: JobState) -> dict[str, Any]:
    """The canary's saved state with both arms side by side, where a canary ran."""
    if not state.canary:
        return {}
    arms = state.arms
    return {"canary": {**state.canary, "baseline": arms.baseline.figures(), "canary": arms.canary.figures()}}
