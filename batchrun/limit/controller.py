"""Requests- and tokens-per-minute budgets, learned from the server. Pure: time is passed in.

Where limits come from, in order:
1. `--rpm` / `--tpm` (fixed; never changed by what the server says).
2. OpenAI's rate-limit headers, read on every response
   (https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers):
   `x-ratelimit-limit-{requests,tokens}`, `x-ratelimit-remaining-{requests,tokens}` and
   `x-ratelimit-reset-{requests,tokens}` in Go duration form (`6m0s`, `1s`, `120ms`).
   The limit sets the refill rate; `remaining` pulls our own bucket down when the server has
   counted more than we thought (other clients on the same key, clock skew, calendar minutes).
3. Nothing said: additive increase while all is well, multiplicative decrease on a 429 (AIMD).

A 429 pauses every dispatch for this model, not only the worker that got it.
"""

from __future__ import annotations

from collections import deque

from batchrun.limit.headers import RateHeaders

# A bucket holds this many seconds of its limit: a small burst, never the whole minute. The refill
# rate is the limit less that burst, so that no 60-second window ever grants more than the limit.
BURST_SECONDS = 1.0

# With no retry-after on a 429, pause this long, doubling for each silent burst in a row.
DEFAULT_PAUSE_S = 1.0

MAX_SILENT_PAUSE_S = 30.0

# AIMD with no headers: start at this share of what got through in the last minute, cut to
# AIMD_DECREASE of the rate that failed, and grow by AIMD_INCREASE of it a second while all is well.
PROBE_START = 0.9

MIN_PROBE_SAMPLE = 20

AIMD_DECREASE = 0.85

AIMD_INCREASE = 0.005


class Bucket:
    """A token bucket for a per-minute limit; its level may go below zero (debt), and above its
    capacity when the server's `remaining` says there is more to use."""

    __slots__ = ("per_minute", "rate", "capacity", "level", "stamp")

    def __init__(self, per_minute: float, now: float) -> None:
        self.stamp = now
        self.level = 0.0
        self.set_per_minute(per_minute, now)
        self.level = self.capacity

    def set_per_minute(self, per_minute: float, now: float) -> None:
        """Change the limit, keeping what has accrued so far."""
        self.refill(now)
        self.per_minute = per_minute
        self.capacity = max(1.0, per_minute * BURST_SECONDS / 60.0)
        self.rate = max(per_minute - self.capacity, per_minute / 2) / 60.0
        self.level = min(self.level, self.capacity)

    def refill(self, now: float) -> None:
        """Add what the rate has earned since the last look."""
        if now > self.stamp:
            if self.level < self.capacity:
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` may be taken (a request larger than the burst waits for a full bucket)."""
        self.refill(now)
        need = min(amount, self.capacity)
        if self.level >= need - 1e-9:  # float crumbs after sleeping exactly the computed delay
            return 0.0
        return (need - self.level) / self.rate

    def sync(self, remaining: float, in_flight: float, now: float) -> None:
        """Follow the server's count: down always; up only while far from its limit, where a
        stale, out-of-order answer cannot push us over it."""
        self.refill(now)
        seen = remaining - in_flight
        if seen < self.level or seen >= 2 * self.capacity:
            self.level = seen


class RateController:
    """The limits of one (base URL, model): when may the next request go, and what was learned."""

    def __init__(
        self, rpm: float | None = None, tpm: float | None = None, *, now: float = 0.0
    ) -> None:
        self.fixed_rpm = rpm
        self.fixed_tpm = tpm
        self.requests = Bucket(rpm, now) if rpm else None
        self.tokens = Bucket(tpm, now) if tpm else None
        self.rpm_source = "flag" if rpm else None
        self.tpm_source = "flag" if tpm else None
        self.paused_until = 0.0
        self.inflight_requests = 0
        self.inflight_tokens = 0
        self.rate_limited = 0
        self._ok_per_second: deque[list[int]] = deque()  # [second, answers]: the last minute only
        self._last_increase = now
        self._silent_bursts = 0  # 429 bursts in a row with no success between them

    @property
    def unlimited(self) -> bool:
        """Nothing is known yet: send as fast as concurrency allows."""
        return self.requests is None and self.tokens is None

    @property
    def rpm(self) -> float | None:
        """The requests-per-minute limit in force, if any."""
        return self.requests.per_minute if self.requests else None

    @property
    def tpm(self) -> float | None:
        """The tokens-per-minute limit in force, if any."""
        return self.tokens.per_minute if self.tokens else None

    def delay(self, tokens: int, now: float) -> float:
        """Seconds until a request of `tokens` may be sent; 0 means now."""
        wait = self.paused_until - now
        if self.requests is not None:
            wait = max(wait, self.requests.wait_for(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_for(tokens, now))
        return max(0.0, wait)

    def take(self, tokens: int, now: float) -> None:
        """Account a request as sent."""
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= tokens
        self.inflight_requests += 1
        self.inflight_tokens += tokens

    def on_answer(
        self, est_tokens: int, used_tokens: int | None, info: RateHeaders | None, now: float
    ) -> None:
        """A request came back (any status but 429); used_tokens is None unless it succeeded."""
        self.inflight_requests -= 1
        self.inflight_tokens -= est_tokens
        if used_tokens is not None:
            self._count_ok(now)
            self._silent_bursts = 0
            if self.tokens is not None:
                self.tokens.level += est_tokens - used_tokens
        if info is not None:
            self._learn(info, now)
        elif self.rpm_source == "probe" and self.requests is not None and used_tokens is not None:
            if now - self._last_increase >= 1.0:  # additive increase, once a second of success
                self._last_increase = now
                self.requests.set_per_minute(self.requests.per_minute + self._step(), now)

    def _count_ok(self, now: float) -> None:
        second = int(now)
        window = self._ok_per_second
        if window and window[-1][0] == second:
            window[-1][1] += 1
        else:
            window.append([second, 1])
            while window[0][0] < second - 60:
                window.popleft()

    def _oks_in_last_minute(self, now: float) -> int:
        return sum(n for second, n in self._ok_per_second if second >= now - 60.0)

    def _step(self) -> float:
        assert self.requests is not None
        return max(1.0, self.requests.per_minute * AIMD_INCREASE)

    def on_rate_limited(
        self, est_tokens: int, retry_after: float | None, info: RateHeaders | None, now: float
    ) -> None:
        """A 429: pause every dispatch, and send below the rate that failed."""
        self.inflight_requests -= 1
        self.inflight_tokens -= est_tokens
        self.rate_limited += 1
        first_of_burst = now >= self.paused_until
        if info is not None:
            self._learn(info, now)
        pause = retry_after
        if pause is None and info is not None:
            resets = [r for r in (info.reset_requests, info.reset_tokens) if r]
            pause = min(resets) if resets else None
        if pause is None:  # the server said nothing: wait longer each silent burst in a row
            earlier = self._silent_bursts if first_of_burst else max(0, self._silent_bursts - 1)
            pause = min(MAX_SILENT_PAUSE_S, DEFAULT_PAUSE_S * 2**earlier)
        self.paused_until = max(self.paused_until, now + pause)
        if not first_of_burst:
            return  # one decision per burst of 429s, not one per in-flight request
        for bucket in (self.requests, self.tokens):
            if bucket is not None:  # empty, and nothing accrues while paused: one probe after it
                bucket.refill(now)
                bucket.level = min(bucket.level, 0.0)
                bucket.stamp = max(bucket.stamp, self.paused_until)
        knows_limit = self.rpm_source in ("flag", "headers") or self.tpm_source in ("flag", "headers")
        # A server that says when to come back (retry-after, or LiteLLM's
        # llm_provider-retry-after) paces us itself: pause, but do not guess a rate, since
        # occasional overload 429s would otherwise grind the rate down for nothing.
        said_when = retry_after is not None
        if not knows_limit and not said_when and self._silent_bursts == 0:
            if self.rpm_source is None:
                # First 429: what the server let through in the last minute is the best guess of
                # its limit, whether it counts in a rolling window, a bucket or calendar minutes.
                # Too few answers to go by: only pause, and guess at a later 429.
                recent = self._oks_in_last_minute(now)
                if recent >= MIN_PROBE_SAMPLE:
                    self._set_rpm(recent * PROBE_START, "probe", now)
            else:
                self._set_rpm(max(1.0, self.requests.per_minute * AIMD_DECREASE), "probe", now)  # type: ignore[union-attr]
            self._last_increase = now + pause
        self._silent_bursts += 1

    def _set_rpm(self, rpm: float, source: str, now: float) -> None:
        if self.requests is None:
            self.requests = Bucket(rpm, now)
            self.requests.level = 0.0
        else:
            self.requests.set_per_minute(rpm, now)
        self.rpm_source = source

    def _learn(self, info: RateHeaders, now: float) -> None:
        if self.fixed_rpm is None and info.limit_requests:
            target = float(info.limit_requests)
            if self.requests is None or self.requests.per_minute != target:
                self._set_rpm(target, "headers", now)
                self.requests.level = 0.0  # type: ignore[union-attr]
        if self.fixed_tpm is None and info.limit_tokens:
            target = float(info.limit_tokens)
            if self.tokens is None:
                self.tokens = Bucket(target, now)
                self.tokens.level = 0.0
            elif self.tokens.per_minute != target:
                self.tokens.set_per_minute(target, now)
            self.tpm_source = "headers"
        if self.requests is not None and info.remaining_requests is not None:
            self.requests.sync(info.remaining_requests, self.inflight_requests, now)
        if self.tokens is not None and info.remaining_tokens is not None:
            self.tokens.sync(info.remaining_tokens, self.inflight_tokens, now)

