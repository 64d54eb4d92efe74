"""Other clients on the same key: the share of a stated limit that is left for us. Pure.

OpenAI's `remaining` counts every request of the key in the last minute; what we sent in that
minute is ours, the rest is other clients'. Our rate converges to the limit less theirs, so two
jobs on one key settle at the limit together instead of taking turns at 429s.
"""

from __future__ import annotations

from bisect import bisect_right

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
        # slot starts and our sends counted up to the end of each: any span's sends are one
        # subtraction, not a sum over up to 600 slots per answer
        self._starts: list[float] = []
        self._upto: list[int] = []
        self._before = 0  # sends in slots already dropped
        self._total = 0
        self._last = 0.0
        self._first: float | None = None

    def sent(self, now: float) -> None:
        """Count one of our requests sent at `now`."""
        if self._first is None:
            self._first = now
        self._total += 1
        self._last = now
        slot = now - now % SLOT_S
        if self._starts and self._starts[-1] == slot:
            self._upto[-1] = self._total
            return
        self._starts.append(slot)
        self._upto.append(self._total)
        old = bisect_right(self._starts, now - 60.0)
        if old > 256:  # drop slots out of every minute in bulk
            self._before = self._upto[old - 1]
            del self._starts[:old], self._upto[:old]

    def _upto_slot(self, t: float) -> int:
        """Our sends in slots starting at or before `t`."""
        i = bisect_right(self._starts, t)
        return self._upto[i - 1] if i else self._before

    def ours(self, limit: float, remaining: float, at: float) -> float:
        """Our share after an answer to a request sent at `at` said `remaining` of `limit`."""
        # the minute before `at`, and only slots within a minute of our last send
        mine = max(0, self._upto_slot(at) - self._upto_slot(max(at, self._last) - 60.0))
        others = max(0.0, limit - remaining - mine)
        span = max(MIN_SPAN_S, min(60.0, at - (self._first if self._first is not None else at)))
        if others * 60.0 / span > limit:  # more than the limit itself: the count is a window's
            self.applies, self.rpm = False, None
            return limit
        target = max(limit * FLOOR, limit - others * 60.0 / span)
        self.rpm = target if self.rpm is None else self.rpm + WEIGHT * (target - self.rpm)
        return self.rpm
