"""Rate limits the way providers enforce them. Pure: every call is told the time `now`.

Three shapes of counting a per-minute limit:

- bucket: OpenAI quantizes ("a 60,000 RPM limit may be enforced as 1,000 requests per second",
  https://platform.openai.com/docs/guides/rate-limits): a token bucket holding `burst_s` seconds
  of the limit, refilling continuously at limit/60 a second.
- fixed: Azure OpenAI evaluates over 1 s or 10 s windows; here windows of `window_s` seconds
  from the server's start, each allowing limit * window_s / 60.
- minute: LiteLLM and many gateways count per calendar minute of the wall clock, each allowing
  the whole limit.

A request dearer than one bucket or window can ever hold is let through when that is full, so
it is not refused for ever (OpenAI refuses it outright; a simulator serving a benchmark should
not); a bucket's debt is then paid off before anything else goes, a window's ends with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A microsecond early counts as on time: an epoch time plus a wait is a float only that exact,
# and without this slack "retry after w seconds" could be refused at now + w.
_SLACK_S = 1e-6
# Rounding a wait up to whole ms or seconds must not turn 1000.0000001 ms into 1001.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Shape:
    """How one per-minute limit is counted: bucket, fixed windows or calendar minutes."""

    window: str = "bucket"
    burst_s: float = 1.0
    window_s: float = 10.0
    origin: float = 0.0  # when fixed windows start counting (the server's start)


class Meter:
    """One limit of one model (requests or tokens a minute), counted in one shape."""

    def __init__(self, limit: int, shape: Shape, now: float) -> None:
        self.limit = limit
        self.shape = shape
        self.rate = limit / 60.0  # a bucket's refill, per second
        if shape.window == "bucket":
            span = shape.burst_s
        elif shape.window == "fixed":
            span = shape.window_s
        else:
            span = 60.0
        self.capacity = max(1.0, limit * span / 60.0)  # what one bucket or window allows
        self.level = self.capacity
        self.stamp = now
        self.window = self._window_of(now)

    def _window_of(self, now: float) -> int:
        if self.shape.window == "fixed":
            return math.floor((now + _SLACK_S - self.shape.origin) / self.shape.window_s)
        return math.floor((now + _SLACK_S) / 60.0)

    def _window_end(self, now: float) -> float:
        if self.shape.window == "fixed":
            return self.shape.origin + (self._window_of(now) + 1) * self.shape.window_s
        return (self._window_of(now) + 1) * 60.0

    def _has(self, amount: float) -> bool:
        slack = self.rate * _SLACK_S if self.shape.window == "bucket" else 0.0
        return self.level + slack >= amount

    def refill(self, now: float) -> None:
        """Bring the level up to `now`: the bucket's trickle, or a fresh window."""
        if self.shape.window == "bucket":
            elapsed = max(0.0, now - self.stamp)  # a wall clock stepping back refills nothing
            self.level = min(self.capacity, self.level + elapsed * self.rate)
        else:
            window = self._window_of(now)
            if window != self.window:
                self.window, self.level = window, self.capacity
        self.stamp = max(self.stamp, now)

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds from `now` until `amount` would be admitted (0.0: it may go now)."""
        self.refill(now)
        need = min(amount, self.capacity)
        if self._has(need):
            return 0.0
        if self.shape.window == "bucket":
            return (need - self.level) / self.rate
        return self._window_end(now) - now

    def take(self, amount: float, now: float) -> None:
        """Charge `amount`; may leave a debt (negative level) when it is over what one window holds."""
        self.refill(now)
        self.level -= amount

    def remaining(self, now: float) -> int:
        """The x-ratelimit-remaining value: OpenAI's counts the minute's limit less what is still
        refilling (so 59 of 60 right after one request, though the next must wait a second);
        windows count what is left in the current one."""
        self.refill(now)
        if self.shape.window == "bucket":
            return max(0, math.floor(self.limit - (self.capacity - self.level)))
        return max(0, math.floor(self.level))

    def reset_s(self, now: float) -> float:
        """The x-ratelimit-reset value in seconds: until the limit is back to its initial state."""
        self.refill(now)
        if self._has(self.capacity):
            return 0.0
        if self.shape.window == "bucket":
            return (self.capacity - self.level) / self.rate
        return self._window_end(now) - now


class ModelLimits:
    """The requests and tokens limits of one model."""

    def __init__(self, rpm: int | None, tpm: int | None, shape: Shape, now: float) -> None:
        self.requests = Meter(rpm, shape, now) if rpm else None
        self.tokens = Meter(tpm, shape, now) if tpm else None

    def admit(self, tokens: int, now: float) -> float:
        """0.0, and the request is charged, when it may go now; else seconds until it could."""
        wait = 0.0
        if self.requests is not None:
            wait = max(wait, self.requests.wait_s(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_s(tokens, now))
        if wait > 0.0:
            return wait
        if self.requests is not None:
            self.requests.take(1, now)
        if self.tokens is not None:
            self.tokens.take(tokens, now)
        return 0.0

    def headers(self, now: float) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers for the limits in force."""
        out: dict[str, str] = {}
        for name, meter in (("requests", self.requests), ("tokens", self.tokens)):
            if meter is not None:
                out[f"x-ratelimit-limit-{name}"] = str(meter.limit)
                out[f"x-ratelimit-remaining-{name}"] = str(meter.remaining(now))
                out[f"x-ratelimit-reset-{name}"] = go_duration(meter.reset_s(now))
        return out


def go_duration(seconds: float) -> str:
    """A duration as Go prints it, which is OpenAI's reset format: `120ms`, `1s`, `8.64s`, `6m0s`."""
    ms = max(0, math.ceil(seconds * 1000 - _EPSILON))  # never says "reset" before it has
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def retry_after_headers(wait_s: float, mode: str) -> dict[str, str]:
    """The headers a 429 carries for a wait: `retry-after` in whole seconds (RFC 9110 §10.2.3,
    rounded up so it is never early) and/or OpenAI's `retry-after-ms`, as `mode` says."""
    out: dict[str, str] = {}
    if mode in ("both", "seconds"):
        out["retry-after"] = str(max(1, math.ceil(wait_s - _EPSILON)))
    if mode in ("both", "ms"):
        out["retry-after-ms"] = str(max(1, math.ceil(wait_s * 1000 - _EPSILON)))
    return out
