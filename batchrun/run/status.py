"""`batchrun status`: what the checkpoint says of a job, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchrun.errors import JobError
from batchrun.store.identity import fingerprint
from batchrun.store.lock import lock_holder, lock_path
from batchrun.store.recovery import recover_output
from batchrun.store.state import checkpoint_path, load_state


def job_status(input_path: Path, output: Path) -> dict[str, Any]:
    """What the checkpoint says of a job, read-only: done, failed, remaining, spend, last run."""
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
        "unpriced_models": sorted(n for n, m in st.models.items() if m.unpriced),
        "runs": state.runs,
        "elapsed_s": round(state.elapsed_s, 1),
        "last_run": last,
        "input_unchanged": input_ok,
        "problem": problem,
        "resumable": state_name in ("stopped", "killed") and input_ok and problem is None,
    }

