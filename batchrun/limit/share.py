"""Other clients on the same key: the share of a stated limit that is left for us. Pure.

OpenAI's `remaining` counts every request of the key in the last minute; what we sent in that
minute is ours, the rest is other clients'. Our rate converges to the limit less theirs, so two
jobs on one key settle at the limit together instead of taking turns at 429s.
"""

from __future__ import annotations

from collections import deque

# Sends are counted in slots of this many seconds: a minute is 600 counters, whatever the rate.
SLOT_S = 0.1
# Others' rate is estimated over at least this long, so the first answers do not swing it.
MIN_SPAN_S = 5.0
# Each answer moves our share this far toward the new estimate: two jobs adjusting at once
# converge on a total at the limit instead of swinging between all and nothing.
WEIGHT = 0.05
FLOOR = 0.05  # never below this share of the limit


class Share:
    """Our share of a limit that others spend too."""

    def __init__(self) -> None:
        self.rpm: float | None = None  # our share, per minute; None until an answer tells
        self.applies = True  # False once the counts show they are not per minute (Azure's windows)
        self._slots: deque[list[float]] = deque()  # [slot start, sends]
        self._first: float | None = None

    def sent(self, now: float) -> None:
        """Count one of our requests sent at `now`."""
        if self._first is None:
            self._first = now
        slot = now - now % SLOT_S
        if self._slots and self._slots[-1][0] == slot:
            self._slots[-1][1] += 1
        else:
            self._slots.append([slot, 1])
            while self._slots[0][0] <= now - 60.0:
                self._slots.popleft()

    def ours(self, limit: float, remaining: float, at: float) -> float:
        """Our share after an answer to a request sent at `at` said `remaining` of `limit`."""
        mine = sum(n for slot, n in self._slots if at - 60.0 < slot <= at)
        others = max(0.0, limit - remaining - mine)
        span = max(MIN_SPAN_S, min(60.0, at - (self._first if self._first is not None else at)))
        if others * 60.0 / span > limit:  # more than the limit itself: the count is a window's
            self.applies, self.rpm = False, None
            return limit
        target = max(limit * FLOOR, limit - others * 60.0 / span)
        self.rpm = target if self.rpm is None else self.rpm + WEIGHT * (target - self.rpm)
        return self.rpm
