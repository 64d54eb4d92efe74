"""The results file: the one writer of a job's output, live or through the Batch API.

Lines are appended with a plain os.write on an O_APPEND descriptor, in the caller: a line is
about a kilobyte into the page cache, which costs less than a thread hop would, and `append` is
the live pipeline's hot path (one call, one os.write per line, no copy). `save` makes the output
durable *then* writes the checkpoint, so a checkpoint never claims a line that is not on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from batchrun.errors import WriteFailed
from batchrun.records import Result
from batchrun.store.state import JobState, save_atomic
from batchrun.store.wire import result_line


class ResultsFile:
    """Appends result lines to the output and saves the checkpoint; `snapshot` gives its bytes."""

    def __init__(self, output: Path, checkpoint: Path, state: JobState, snapshot: Callable[[], bytes]) -> None:
        self.output = output
        self.checkpoint = checkpoint
        self.state = state
        self.snapshot = snapshot
        self.failed: str | None = None  # why a line could not be written; nothing more is, this run
        self._fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, result: Result) -> bool:
        """Append the result's line and count it; False when it cannot be written (`failed` says why)."""
        if self.failed is not None:
            return False  # the record goes again next run
        data = result_line(result, time.time())
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # a write may take only part of it
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(self._fd, view):]
        except OSError as e:
            # cut what part of the line got in: the output stays whole lines, its record is sent
            # again next run, and nothing after it is written this run
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.state.output_offset)
            self.failed = f"cannot write the output {self.output}: {e.strerror or e}"
            return False
        self.state.output_offset += len(data)
        self.state.record(result)
        return True

    def write(self, result: Result) -> None:
        """Append a line unless its record already has one (a collection repeated after a crash
        finds the lines it wrote the first time); a failure raises WriteFailed."""
        if result.line in self.state.done:
            return
        if not self.append(result):
            raise WriteFailed(f"{self.failed}; nothing was lost: free space first")

    def persist(self, data: bytes) -> None:
        """The output durable up to the state's offset, then the checkpoint `data` (OSError raised)."""
        os.fsync(self._fd)  # never let a checkpoint claim lines that are not on disk
        save_atomic(self.checkpoint, data)

    async def save_in_thread(self) -> None:
        """`persist` off the event loop (OSError raised): the checkpoints of a running pipeline."""
        await asyncio.to_thread(self.persist, self.snapshot())

    async def sync_in_thread(self) -> None:
        """fsync the output off the event loop (OSError raised)."""
        await asyncio.to_thread(os.fsync, self._fd)

    def save(self) -> None:
        """Output durable first, then the checkpoint; a failure raises WriteFailed."""
        try:
            self.persist(self.snapshot())
        except OSError as e:
            raise WriteFailed(f"cannot write the output or checkpoint {self.checkpoint}: {e.strerror or e}; "
                              "nothing was lost: free space first") from None

    def close(self) -> None:
        """Close the output (the last save made it durable)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
