"""The Batch API's pace as the job sees it: lines answered across its running batches over time
(`request_counts.completed + failed`, summed), read at each look. Pure: times are passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW_S = 60.0  # the pace over the last minute of looks: a provider's pace changes with its load
MIN_SPAN_S = 1.0  # looks closer together than this say nothing of a pace


@dataclass(slots=True)
class BatchPace:
    """Looks at the job's batches, and what they tell: lines a second, and a batch's overhead."""

    looks: list[tuple[float, int]] = field(default_factory=list)  # (time, lines answered in batches, cumulative)
    first_submit: float | None = None
    first_answer: float | None = None

    def submitted(self, at: float) -> None:
        """A batch was submitted at `at`."""
        if self.first_submit is None:
            self.first_submit = at

    def look(self, at: float, answered: int, running: bool) -> None:
        """What the batches had answered at `at` (cumulative over the job); `running`: whether any
        batch still had lines to answer (idle time is no pace)."""
        if answered > 0 and self.first_answer is None:
            self.first_answer = at
        if not running:
            self.looks.clear()  # the next running spell starts its own span
            return
        if self.looks and answered < self.looks[-1][1]:
            self.looks.clear()  # a count that went back (a batch dropped): start over
        self.looks.append((at, answered))
        while len(self.looks) > 2 and at - self.looks[1][0] >= WINDOW_S:
            self.looks.pop(0)

    def lines_per_s(self) -> float | None:
        """The observed pace; None until two looks at least MIN_SPAN_S apart show progress."""
        if len(self.looks) < 2:
            return None
        (t0, a0), (t1, a1) = self.looks[0], self.looks[-1]
        if t1 - t0 < MIN_SPAN_S or a1 <= a0:
            return None
        return (a1 - a0) / (t1 - t0)

    def overhead_s(self) -> float | None:
        """A batch's fixed time as seen: from the first submission to the first answer (validation),
        twice (finalizing and collection are as long again); None until an answer is seen."""
        if self.first_submit is None or self.first_answer is None:
            return None
        return 2 * max(0.0, self.first_answer - self.first_submit)
