"""The provider's Batch API capacity: at most N lines a second answered across all batches of the
simulator, shared by their worker threads in the order they ask (a busy provider's batches each
go slower as more run). Cancelling a batch stops its share at once, and its answered lines stay
in its output file (`batches` writes what `batch_work` answered before the cancel)."""

from __future__ import annotations

import threading
import time


class BatchCapacity:
    """Slots one line at a time at `lines_per_s`, across every thread that asks."""

    def __init__(self, lines_per_s: float) -> None:
        self.gap = 1.0 / lines_per_s
        self._lock = threading.Lock()
        self._next = 0.0

    def take(self, cancel: threading.Event) -> bool:
        """Wait for the next slot; False when `cancel` is set first (the line is not answered)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.gap
        wait = slot - time.monotonic()
        if wait > 0 and cancel.wait(wait):
            return False
        return not cancel.is_set()
