"""A token bucket for one per-minute limit. Pure: time is passed in."""

from __future__ import annotations

# A bucket holds this many seconds of its limit: a small burst, never the whole minute (providers
# quantize: "60,000 RPM may be enforced as 1,000 requests per second"). The refill rate is the
# limit less that burst, so that no 60-second window ever grants more than the limit.
BURST_SECONDS = 1.0


class Bucket:
    """A token bucket for a per-minute limit; its level may go below zero (debt), and above its
    capacity when the server's `remaining` says there is more to use."""

    __slots__ = ("per_minute", "rate", "capacity", "level", "stamp")

    def __init__(self, per_minute: float, now: float, full: bool = True) -> None:
        self.stamp = now
        self.level = 0.0
        self.set_per_minute(per_minute, now)
        self.level = self.capacity if full else 0.0

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

    def hold(self, until: float) -> None:
        """Empty the bucket and let nothing accrue before `until` (a pause the server asked for)."""
        self.level = min(self.level, 0.0)
        self.stamp = max(self.stamp, until)

    def sync(
        self, remaining: float, sent_after: float, now: float, limit: float | None = None, reset: float | None = None
    ) -> None:
        """Follow the server's count, less what was sent after it counted, down only: OpenAI
        states `remaining` against the minute while it enforces per second, so a high count is
        no licence to burst (following it up was a 429 storm against such a server). How far the
        count is below the limit is what the server still refills; while that is within a
        couple of seconds of the limit, it is the state of its per-second bucket too, and
        pulls ours down when other clients spend the same key. That reading holds only where
        the reset time says so (the deficit refilling at the limit's rate); a count of the last
        minute's requests, or of a window's, resets on its own clock."""
        self.refill(now)
        level = min(self.level, remaining - sent_after)
        if limit and reset is not None:
            deficit = limit - remaining
            refills = abs(reset - deficit * 60.0 / limit) <= 0.25 + 0.1 * reset
            if 0 < deficit <= 2 * self.capacity and refills:
                level = min(level, self.capacity - deficit - sent_after)
        self.level = level
