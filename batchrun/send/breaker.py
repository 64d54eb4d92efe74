"""Is a provider down? Pure: time is passed in.

A record fails on its own only for its own reasons. When every recent attempt at a provider's
model failed with a connection error, a timeout or a 5xx, and nothing has come back for a while,
the provider is down: the job stops, resumable, instead of writing a failure line for every
record that happened to be waiting (the README's exit code 75).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Down: at least this many failures in a row and, if it ever answered, none for this long.
DOWN_AFTER_FAILURES = 10
DOWN_AFTER_S = 10.0


@dataclass(slots=True)
class _Health:
    failures_in_a_row: int = 0
    last_answer: float | None = None
    first_failure: float | None = None


class Breaker:
    """Counts failures in a row per provider: an answer for any of its models shows it is up."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._health: dict[tuple[str | None, str], _Health] = {}

    def _of(self, model: str, provider: str | None) -> _Health:
        h = self._health.get((provider, ""))
        if h is None:
            h = self._health[(provider, "")] = _Health()
        return h

    def answered(self, model: str, provider: str | None = None) -> None:
        """The provider answered (anything but a transport failure or a 5xx)."""
        h = self._of(model, provider)
        if h.failures_in_a_row or h.last_answer is None:  # on the hot path: no clock read when all is well
            h.failures_in_a_row, h.last_answer, h.first_failure = 0, self.clock(), None

    def failed(self, model: str, provider: str | None = None) -> None:
        """A connection error, a timeout or a 5xx."""
        h = self._of(model, provider)
        h.failures_in_a_row += 1
        if h.first_failure is None:
            h.first_failure = self.clock()

    def down(self, model: str, provider: str | None = None) -> bool:
        """Every recent attempt failed: from the start (it never answered), or for long enough
        since its last answer that it is not a blip."""
        h = self._of(model, provider)
        if h.failures_in_a_row < DOWN_AFTER_FAILURES or h.first_failure is None:
            return False
        if h.last_answer is None:
            return True
        return self.clock() - max(h.last_answer, h.first_failure) >= DOWN_AFTER_S
