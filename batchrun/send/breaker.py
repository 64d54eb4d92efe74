"""Is a provider down, and may a model there be tried now? Pure: time is passed in.

Two questions, two granularities:

- **The circuit** of one provider's model (`allow`, `is_open`): after OPEN_AFTER_FAILURES
  connection failures, timeouts or 5xx in a row it opens, and records that have somewhere else
  to go (a fallback model, the canary's baseline) go there at once instead of spending every
  attempt with backoff. After a cool-down one probe is let through: an answer closes the
  circuit, a failure opens it again for twice as long (up to MAX_COOL_DOWN_S).
- **Down** (`down`): a record with nowhere else to go fails on its own only for its own
  reasons. When nothing ever came back from a provider this run (no connection, no byte), or
  every recent attempt at it failed and nothing has come back for a while, the job stops,
  resumable (exit 75), instead of writing a failure line for every record that happened to be
  waiting (a one-record cron job against a mistyped port included). An answer from any of the
  provider's models shows it is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Down: at least this many failures in a row and, if it ever answered, none for this long.
DOWN_AFTER_FAILURES = 10
DOWN_AFTER_S = 10.0
OPEN_AFTER_FAILURES = 5
COOL_DOWN_S = 5.0
MAX_COOL_DOWN_S = 60.0


@dataclass(slots=True)
class _Health:
    failures_in_a_row: int = 0
    last_answer: float | None = None
    first_failure: float | None = None
    reached: bool = False  # anything came back from it this run, a 5xx included


@dataclass(slots=True)
class _Circuit:
    failures_in_a_row: int = 0
    open_until: float | None = None  # None: closed
    cool_down: float = COOL_DOWN_S
    probing: bool = False  # the one probe after a cool-down is on the wire
    opened: int = 0  # times it opened, for the summary


class Breaker:
    """Per provider: is it down? Per provider and model: is its circuit open?"""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._health: dict[str | None, _Health] = {}
        self._circuits: dict[tuple[str | None, str], _Circuit] = {}

    def _of(self, provider: str | None) -> _Health:
        h = self._health.get(provider)
        if h is None:
            h = self._health[provider] = _Health()
        return h

    def _circuit(self, model: str, provider: str | None) -> _Circuit:
        c = self._circuits.get((provider, model))
        if c is None:
            c = self._circuits[(provider, model)] = _Circuit()
        return c

    def answered(self, model: str, provider: str | None = None) -> None:
        """The provider answered (anything but a transport failure or a 5xx)."""
        h = self._of(provider)
        if h.failures_in_a_row or h.last_answer is None:  # on the hot path: no clock read when all is well
            h.failures_in_a_row, h.last_answer, h.first_failure, h.reached = 0, self.clock(), None, True
        c = self._circuits.get((provider, model))  # a model that never failed has no circuit to reset
        if c is not None and (c.failures_in_a_row or c.open_until is not None):
            c.failures_in_a_row, c.open_until, c.probing, c.cool_down = 0, None, False, COOL_DOWN_S

    def failed(self, model: str, provider: str | None = None, reached: bool = False) -> None:
        """A connection error or a timeout; with `reached`, a 5xx (the server itself answered)."""
        now = self.clock()
        h = self._of(provider)
        h.failures_in_a_row += 1
        h.reached = h.reached or reached
        if h.first_failure is None:
            h.first_failure = now
        c = self._circuit(model, provider)
        c.failures_in_a_row += 1
        if c.probing:  # the probe failed: stay open, for longer
            c.probing = False
            c.cool_down = min(c.cool_down * 2, MAX_COOL_DOWN_S)
            c.open_until = now + c.cool_down
        elif c.open_until is None and c.failures_in_a_row >= OPEN_AFTER_FAILURES:
            c.open_until = now + c.cool_down
            c.opened += 1

    def allow(self, model: str, provider: str | None = None) -> bool:
        """May a request go to this model now? Closed: yes; open: only the one probe after its
        cool-down."""
        c = self._circuits.get((provider, model))
        if c is None or c.open_until is None:
            return True
        if c.probing or self.clock() < c.open_until:
            return False
        c.probing = True
        return True

    def is_open(self, model: str, provider: str | None = None) -> bool:
        """Is the circuit open (records with somewhere else to go should go there)?"""
        c = self._circuits.get((provider, model))
        return c is not None and c.open_until is not None

    def opened(self) -> dict[tuple[str | None, str], int]:
        """How many times each circuit opened."""
        return {k: c.opened for k, c in self._circuits.items() if c.opened}

    def down(self, model: str, provider: str | None = None) -> bool:
        """Every recent attempt at the provider failed: from the start (it never answered), or
        for long enough since its last answer that it is not a blip."""
        h = self._of(provider)
        if h.first_failure is None:
            return False
        if not h.reached:  # nothing ever came back this run: a record that gave up on it says nothing of the record
            return True
        if h.failures_in_a_row < DOWN_AFTER_FAILURES:
            return False
        if h.last_answer is None:
            return True
        return self.clock() - max(h.last_answer, h.first_failure) >= DOWN_AFTER_S
