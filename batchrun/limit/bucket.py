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

    def sync(self, remaining: float, sent_after: float, now: float, up: bool = True) -> None:
        """Follow the server's count, less what was sent after it counted. That is never more than
        the server has now, unless others spend the same key: so down always, and up unless
        `up` is False (others are known to spend it), or while far from its limit."""
        self.refill(now)
        seen = remaining - sent_after
        if up or seen < self.level or seen >= 2 * self.capacity:
            self.level = seen
