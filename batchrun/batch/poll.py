"""How long to wait before asking the provider again: pure, no clock of its own.

Batches take minutes to hours; polling starts quick (a small batch may be done in seconds),
backs off by half again each quiet round to a cap, and starts quick again after a change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PollBackoff:
    """The wait before the next poll."""

    first_s: float = 0.5
    factor: float = 1.5
    cap_s: float = 60.0
    _quiet: int = 0

    def next_s(self, changed: bool) -> float:
        """The wait after a round of polls; `changed`: some batch moved on in that round."""
        self._quiet = 0 if changed else self._quiet + 1
        return min(self.cap_s, self.first_s * self.factor**self._quiet)
