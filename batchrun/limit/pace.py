"""The send rate found from 429s alone: multiplicative decrease at a congestion event, then
quick recovery toward the rate the last 429 came at and additive increase past it, faster the
longer all is well (as TCP CUBIC probes). Pure: time is passed in."""

from __future__ import annotations

import math
from collections import deque

from batchrun.limit.bucket import Bucket

# Multiplicative decrease of the send rate at a 429 burst, and additive increase: this share of
# the rate after the cut, every second of answers, so a cut is made good in about ten seconds.
DECREASE = 0.85
INCREASE_PER_S = 0.02
# A cut after a cycle at least this long goes back to this share of the rate the server let
# through over the cycle.
MIN_CYCLE_S = 2.0
DELIVERED_SHARE = 0.97
# The additive increase doubles for every this many seconds without a 429.
ACCELERATE_EVERY_S = 5.0
# Below the rate the last 429 came at, close this share of the gap a second.
RECOVER_PER_S = 0.5


class Pace:
    """The AIMD state of one provider and model's request rate."""

    def __init__(self, now: float) -> None:
        self.cut_rpm = 0.0  # the rate right after the last cut; 0: never cut
        self.cut_at = -math.inf
        self.bad_rpm: float | None = None  # the send rate a 429 last came at
        self._last_grow = now
        self._answers: deque[list[float]] = deque()  # [tenth of a second, answers]: the last second
        self._answered_since_cut = True
        self._answers_since_cut = 0

    def answered(self, sent_at: float, now: float) -> None:
        """An answer came for a request sent at `sent_at`."""
        self._answered_since_cut = self._answered_since_cut or sent_at >= self.cut_at
        self._answers_since_cut += 1
        slot = now - now % 0.1
        answers = self._answers
        if answers and answers[-1][0] == slot:
            answers[-1][1] += 1
        else:
            answers.append([slot, 1.0])
            while answers[0][0] < now - 1.0:
                answers.popleft()

    def answered_lately(self, now: float) -> bool:
        """Whether any answer came in the last second."""
        return bool(self._answers) and self._answers[-1][0] >= now - 1.1

    def new_event(self, sent_at: float) -> bool:
        """Whether a 429 for a request sent at `sent_at` is a new congestion event: one cut per
        event, as TCP makes one per window. A request sent before the last cut was sent at the
        old rate, and 429s with no answer between them only wait longer."""
        return sent_at >= self.cut_at and self._answered_since_cut

    def resume_at(self, when: float) -> None:
        """Nothing grows during a pause."""
        self._last_grow = when

    def cut(self, bucket: Bucket | None, now: float) -> Bucket:
        """Multiplicative decrease, from the rate we send at or, with none set yet, the rate the
        answers of the last second came at (early on an under- or overcount that the growth and
        cuts after it correct)."""
        self._answered_since_cut = False
        if bucket is None:
            self.bad_rpm = None
            rpm = 60.0 * (sum(n for slot, n in self._answers if slot >= now - 1.0) or 1.0)
            bucket = Bucket(rpm, now, full=False)
        else:
            self.bad_rpm = bucket.per_minute
            new = bucket.per_minute * DECREASE
            cycle = now - self.cut_at
            if cycle >= MIN_CYCLE_S:
                # What the server let through since the last cut is its sustained rate: the burst
                # it refilled while we were under was spent while we were over. Go back to just
                # under it, not far below, and probe from there.
                delivered = 60.0 * self._answers_since_cut / cycle
                self.bad_rpm = min(self.bad_rpm, delivered)
                new = max(new, delivered * DELIVERED_SHARE)
            bucket.set_per_minute(max(1.0, new), now)
        self.cut_rpm = bucket.per_minute
        self.cut_at = now
        self._answers_since_cut = 0
        return bucket

    def first_cut(self, admitted_unanswered: int, now: float) -> Bucket:
        """The first cut, with no rate known, once the burst that met the limit has answered (or
        after a wait): a short bucket let a second of its rate through, which is the answers of
        the last second and what it admitted that is still unanswered. The 429s came at that
        rate, so growth past it is additive."""
        answers = sum(n for slot, n in self._answers if slot >= now - 1.0)
        rpm = 60.0 * max(1.0, answers + admitted_unanswered)
        bucket = self.cut(None, now)
        bucket.set_per_minute(rpm, now)
        self.cut_rpm = self.bad_rpm = rpm
        return bucket

    def grow(self, bucket: Bucket, limit_rpm: float | None, now: float) -> None:
        """While answers come: back quickly toward the rate the last 429 came at, then slowly past
        it (additive increase); up to a stated limit, none when only 429s told."""
        if not self.cut_rpm or now - self._last_grow < 0.25:
            return
        dt = now - self._last_grow
        rpm = bucket.per_minute
        # the longer all is well since the cut, the faster it probes: a rate guessed too low at
        # the start is not crawled back from
        accel = 2.0 ** min(2.0, max(0.0, now - self.cut_at) / ACCELERATE_EVERY_S)
        step = INCREASE_PER_S * self.cut_rpm * dt * accel
        if self.bad_rpm is None:
            step = max(step, rpm * RECOVER_PER_S * dt)  # no rate known to be too high yet
        elif rpm < self.bad_rpm:
            step = max(step, (self.bad_rpm - rpm) * min(1.0, RECOVER_PER_S * dt))
        grown = rpm + step if limit_rpm is None else min(rpm + step, limit_rpm)
        self._last_grow = now
        if grown != rpm:
            bucket.set_per_minute(grown, now)
