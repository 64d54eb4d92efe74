"""The results file and checkpoint of a Batch API job: result lines appended one by one, and
the checkpoint (with the plan in it) saved only after the output is fsynced, as the live
pipeline does, so a checkpoint never claims a line that is not on disk.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from batchrun.batch.plan import Plan
from batchrun.errors import WriteFailed
from batchrun.records import Result
from batchrun.store.state import JobState, save_atomic
from batchrun.store.wire import result_line


class JobOutput:
    """Appends result lines to the output and saves the checkpoint; `snapshot` gives its bytes."""

    def __init__(self, output: Path, checkpoint: Path, state: JobState, plan: Plan,
                 snapshot: Callable[[], bytes]) -> None:
        self.output = output
        self.checkpoint = checkpoint
        self.state = state
        self.plan = plan
        self.snapshot = snapshot
        self._fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        """Close the output (the last save() made it durable)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def write(self, r: Result) -> None:
        """Append one record's line, unless the record already has one (a collection repeated
        after a crash finds the lines it wrote the first time)."""
        if r.line in self.state.done:
            return
        data = result_line(r, time.time())
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as e:
            with contextlib.suppress(OSError):  # the output stays whole lines
                os.ftruncate(self._fd, self.state.output_offset)
            raise WriteFailed(f"cannot write the output {self.output}: {e.strerror or e}; nothing was lost: "
                              "free space first") from None
        self.state.output_offset += len(data)
        self.state.record(r)

    def save(self) -> None:
        """Output durable first, then the checkpoint (with the plan as it is now)."""
        self.state.batch = self.plan.to_state()
        try:
            os.fsync(self._fd)
            save_atomic(self.checkpoint, self.snapshot())
        except OSError as e:
            raise WriteFailed(f"cannot write the output or checkpoint {self.checkpoint}: {e.strerror or e}; "
                              "nothing was lost: free space first") from None
