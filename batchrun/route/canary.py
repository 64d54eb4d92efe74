"""`[canary]`: a share of records tries the new model; its results are judged as they come, and
a bad window rolls it back at once. Pure: time is passed in, nothing is sent or saved here.

Every canary record gets one attempt on the canary model; a failure goes straight to the
baseline, so no record pays for the canary's trouble. Judging is per canary answer: a window
is failed as soon as it holds more failures than it may (no need to wait for it to fill), and
a healthy full window steps the share up the ramp; reaching 1.0 promotes the canary.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchrun.errors import ConfigError
from batchrun.route.checks import known_table

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"
MIN_SUCCESS_RATE = 0.95  # the seeds' playbooks: roll back under 95 % success

_KEYS = {"model", "share", "ramp", "window", "max_error_rate", "min_success_rate", "max_p95_ms",
         "max_consecutive_failures"}


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    """The `[canary]` table."""

    model: str
    share: float
    ramp: tuple[float, ...] = ()
    window: int = 50
    max_error_rate: float = 0.05
    min_success_rate: float = MIN_SUCCESS_RATE
    max_p95_ms: float = 0.0  # 0: off
    max_consecutive_failures: int = 5


def parse_canary(t: Any, where: str) -> CanaryConfig | None:
    """The `[canary]` table; ConfigError naming the key for a bad value."""
    if t is None:
        return None
    here = f"{where}: [canary]"
    t = known_table(t, here, _KEYS)
    model = t.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{here}: model must name the model to try")
    ramp = t.get("ramp", [])
    if not isinstance(ramp, list) or not all(_share(v) for v in ramp):
        raise ConfigError(f"{here}: ramp must be a list of shares from 0 to 1")
    if any(b <= a for a, b in zip(ramp, ramp[1:], strict=False)):
        raise ConfigError(f"{here}: ramp must be increasing, got {ramp}")
    share = t.get("share", ramp[0] if ramp else None)
    if not _share(share):
        raise ConfigError(f"{here}: share must be a number from 0 to 1, got {share!r}")
    window = t.get("window", 50)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"{here}: window must be a whole number of results, 1 or more")
    rates = {k: t.get(k, d) for k, d in (("max_error_rate", 0.05), ("min_success_rate", MIN_SUCCESS_RATE))}
    for k, v in rates.items():
        if not _share(v):
            raise ConfigError(f"{here}: {k} must be a number from 0 to 1, got {v!r}")
    p95 = t.get("max_p95_ms", 0)
    if isinstance(p95, bool) or not isinstance(p95, int | float) or p95 < 0:
        raise ConfigError(f"{here}: max_p95_ms must be milliseconds, 0 (off) or more")
    most = t.get("max_consecutive_failures", 5)
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise ConfigError(f"{here}: max_consecutive_failures must be a whole number, 1 or more")
    return CanaryConfig(model, float(share or 0.0), tuple(float(v) for v in ramp), window,
                        float(rates["max_error_rate"]), float(rates["min_success_rate"]), float(p95), most)


def _share(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0


def key_point(key: str, salt: bytes = b"canary") -> float:
    """Where a record key falls in [0, 1): the same on every run and machine."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=salt[:16]).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(slots=True)
class Canary:
    """The canary's state and its judge. `clock` gives epoch seconds, for the rollback's time."""

    config: CanaryConfig
    clock: Callable[[], float]
    state: str = RUNNING
    share: float = 0.0
    reason: str | None = None
    changed_at: float | None = None
    judged: int = 0  # canary answers judged over the job
    records_at_change: int | None = None
    threshold: str | None = None  # what decided it: a threshold's name, "refused" or "ramp"
    steps: list[list[float]] = field(default_factory=list)  # [epoch, share] each time the share moved
    _window: list[tuple[bool, float]] = field(default_factory=list)
    _in_a_row: int = 0

    def __post_init__(self) -> None:
        if not self.share:
            self.share = self.config.share
        if self.state == RUNNING and self.share >= 1.0 and self.config.ramp:
            self.state = PROMOTED

    def takes(self, key: str) -> bool:
        """Does this record go to the canary now? Shares only grow, so a key once in stays in."""
        if self.state == ROLLED_BACK:
            return False
        return self.state == PROMOTED or key_point(key) < self.share

    def observe(self, ok: bool, latency_ms: float) -> bool:
        """Judge one canary answer; True when the state or share changed (save it at once)."""
        if self.state != RUNNING:
            return False
        c = self.config
        self.judged += 1
        self._in_a_row = 0 if ok else self._in_a_row + 1
        self._window.append((ok, latency_ms))
        n, failures = len(self._window), sum(1 for good, _ in self._window if not good)
        if self._in_a_row >= c.max_consecutive_failures:
            return self._roll_back(f"{self._in_a_row} failures in a row (max_consecutive_failures "
                                   f"{c.max_consecutive_failures})", "max_consecutive_failures")
        # the window is lost once it holds more failures than a full window may: judge at once
        if failures > c.max_error_rate * c.window:
            return self._roll_back(f"{failures} of {n} canary answers failed: error rate over "
                                   f"max_error_rate {c.max_error_rate:g} of a {c.window}-answer window",
                                   "max_error_rate")
        if failures > (1.0 - c.min_success_rate) * c.window:
            return self._roll_back(f"{failures} of {n} canary answers failed: success under "
                                   f"{c.min_success_rate:.0%} of a {c.window}-answer window", "min_success_rate")
        if n < c.window:
            return False
        p95 = _p95([ms for good, ms in self._window if good])
        self._window.clear()
        if c.max_p95_ms and p95 is not None and p95 > c.max_p95_ms:
            return self._roll_back(f"p95 latency {p95:.0f} ms over max_p95_ms {c.max_p95_ms:g}", "max_p95_ms")
        return self._step_up()

    def _step_up(self) -> bool:
        """A healthy full window: the next step of the ramp, if there is one."""
        step = next((s for s in self.config.ramp if s > self.share), None)
        if step is None:
            return False
        self.share, self.changed_at = step, self.clock()
        self.steps.append([self.changed_at, step])
        if step >= 1.0:
            self.state, self.records_at_change, self.threshold = PROMOTED, self.judged, "ramp"
            self.reason = f"ramp reached 1.0 after {self.judged} canary answers in healthy windows"
        return True

    def roll_back(self, reason: str) -> bool:
        """Roll back now, whatever the window says; False if it was no longer running."""
        return self.state == RUNNING and self._roll_back(reason, "refused")

    def _roll_back(self, reason: str, threshold: str) -> bool:
        self.state, self.reason, self.threshold = ROLLED_BACK, reason, threshold
        self.changed_at, self.records_at_change = self.clock(), self.judged
        self.steps.append([self.changed_at, 0.0])
        self._window.clear()
        return True

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the state holds on resume."""
        c = self.config
        return {"model": c.model, "state": self.state, "share": self.share, "reason": self.reason,
                "at": self.changed_at, "judged": self.judged, "records": self.records_at_change,
                "threshold": self.threshold, "steps": self.steps, "first_share": c.share,
                "thresholds": {"window": c.window, "max_error_rate": c.max_error_rate,
                               "min_success_rate": c.min_success_rate, "max_p95_ms": c.max_p95_ms,
                               "max_consecutive_failures": c.max_consecutive_failures}}

    @classmethod
    def from_state(cls, config: CanaryConfig, clock: Callable[[], float], saved: Any) -> Canary:
        """The canary as a checkpoint left it; a fresh one when it held none for this model."""
        if not isinstance(saved, dict) or saved.get("model") != config.model:
            return cls(config, clock)
        share = saved.get("share")
        return cls(config, clock, state=str(saved.get("state") or RUNNING),
                   share=float(share or 0.0) if _share(share) else config.share, reason=saved.get("reason"),
                   changed_at=saved.get("at"), judged=int(saved.get("judged") or 0),
                   records_at_change=saved.get("records"), threshold=saved.get("threshold"),
                   steps=[list(s) for s in saved.get("steps") or () if isinstance(s, list) and len(s) == 2])


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
