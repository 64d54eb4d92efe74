"""The results file and checkpoint of a Batch API job: `store.output.ResultsFile` (the one writer
of result lines, the live pipeline's too), whose checkpoint carries the plan as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchrun.batch.plan import Plan
from batchrun.store.output import ResultsFile
from batchrun.store.state import JobState


class JobOutput(ResultsFile):
    """The job's results file; each save puts the plan into the checkpoint first."""

    def __init__(self, output: Path, checkpoint: Path, state: JobState, plan: Plan,
                 snapshot: Callable[[], bytes]) -> None:
        super().__init__(output, checkpoint, state, snapshot)
        self.plan = plan

    def save(self) -> None:
        """Output durable first, then the checkpoint (with the plan as it is now)."""
        self.state.batch = self.plan.to_state()
        super().save()
