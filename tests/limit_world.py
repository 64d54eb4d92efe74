"""A discrete-event world on a fake clock: servers that enforce limits the ways providers document,
and one or more RateControllers sending a job through them. Nothing sleeps; a minute of traffic
runs in milliseconds, so the controller's behaviour against every shape is a unit test."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from batchrun.limit.controller import RateController
from batchrun.limit.headers import RateHeaders
from batchrun.limit.permit import Permit


@dataclass
class Server:
    """One limit (requests or tokens per minute) in one of three shapes."""

    per_minute: float
    shape: str = "bucket"  # bucket (1 s of burst, continuous refill), fixed (window_s), minute
    window_s: float = 10.0
    headers: bool = True
    retry_after: bool = True
    remaining: str = "deficit"  # bucket: limit less what it still refills (OpenAI's docs), or "minute" used
    epoch: float = 1_700_000_000.0  # the wall clock at fake time 0, for calendar minutes
    level: float = field(init=False)
    stamp: float = 0.0
    window_start: float = 0.0

    def __post_init__(self) -> None:
        self.level = self.capacity

    @property
    def capacity(self) -> float:
        if self.shape == "bucket":
            return max(1.0, self.per_minute / 60.0)
        if self.shape == "fixed":
            return self.per_minute * self.window_s / 60.0
        return self.per_minute

    def _refresh(self, now: float) -> None:
        if self.shape == "bucket":
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_minute / 60.0)
            self.stamp = now
            return
        span = self.window_s if self.shape == "fixed" else 60.0
        wall = now + (self.epoch if self.shape == "minute" else 0.0)
        start = wall - wall % span
        if start != self.window_start:
            self.window_start, self.level = start, self.capacity

    def _wait(self, charge: float, now: float) -> float:
        if self.shape == "bucket":
            return (min(charge, self.capacity) - self.level) * 60.0 / self.per_minute
        span = self.window_s if self.shape == "fixed" else 60.0
        wall = now + (self.epoch if self.shape == "minute" else 0.0)
        return span - wall % span

    def admit(self, charge: float, now: float) -> tuple[bool, float | None, float]:
        """(admitted, retry-after or None, seconds to reset) for a request charging `charge`."""
        self._refresh(now)
        if self.level >= min(charge, self.capacity) - 1e-9:
            self.level -= charge
            return True, None, self._wait(self.capacity, now)
        wait = self._wait(charge, now)
        return False, wait if self.retry_after else None, wait


@dataclass
class Job:
    """One client: a controller, its concurrency and its records."""

    controller: RateController
    records: int
    tokens: int = 1  # what each request charges (and is estimated at)
    pending: int = field(init=False)
    in_flight: int = 0
    done: int = 0
    sent: int = 0
    rejected: int = 0
    next_try: float = 0.0

    def __post_init__(self) -> None:
        self.pending = self.records


@dataclass
class Run:
    """What the server counted over a whole job."""

    received: int
    rejected: int
    admitted: list[tuple[float, float]]  # (time, charge)
    end: float

    @property
    def share_429(self) -> float:
        return self.rejected / self.received

    def bucket_utilization(self, server: Server) -> float:
        """The issue's definition: ideal time ÷ actual time; ideal = (charge − one bucket) ÷ rate."""
        charge = sum(c for _, c in self.admitted)
        ideal = (charge - server.capacity) / (server.per_minute / 60.0)
        return ideal / (self.admitted[-1][0] - self.admitted[0][0])

    def window_utilization(self, server: Server) -> float:
        """Admitted per full window ÷ the window's quota, over the windows before the last."""
        span = server.window_s if server.shape == "fixed" else 60.0
        offset = server.epoch if server.shape == "minute" else 0.0
        per: dict[int, float] = {}
        for t, c in self.admitted:
            per[int((t + offset) // span)] = per.get(int((t + offset) // span), 0.0) + c
        full = sorted(per)[1:-1] or sorted(per)[:1]
        return sum(per[w] for w in full) / (len(full) * server.capacity)


def run(
    jobs: list[Job], server: Server, latency: float = 0.05, jitter: float = 0.02, seed: int = 1,
    by_tokens: bool = False, limit: float = 3600.0, reject_latency: float = 0.001,
) -> Run:
    """Send every job's records through the server; returns the server's counts. A 429 comes
    back after `reject_latency` (a gateway in between: longer)."""
    rng = random.Random(seed)
    # time, seq, job, kind, permit, retry-after, headers
    events: list[tuple[float, int, int, str, Permit, float | None, RateHeaders | None]] = []
    seq = 0
    now = 0.0
    received = rejected = 0
    admitted: list[tuple[float, float]] = []

    recent: deque[tuple[float, float]] = deque()  # admitted in the last minute, for `remaining`

    def headers(ok_reset: float) -> RateHeaders | None:
        if not server.headers:
            return None
        # OpenAI counts `remaining` against the minute while it enforces per second; windows
        # count what is left in the window
        while recent and recent[0][0] <= now - 60.0:
            recent.popleft()
        if server.shape != "bucket":
            left = server.level
        elif server.remaining == "minute":  # resets when the oldest request leaves the minute
            left = server.per_minute - sum(c for _, c in recent)
            ok_reset = 60.0 - (now - recent[0][0]) if recent else 0.0
        else:
            left = server.per_minute - (server.capacity - server.level)
        remaining = max(0, int(left))
        if by_tokens:
            return RateHeaders(limit_tokens=int(server.per_minute), remaining_tokens=remaining,
                               reset_tokens=ok_reset)
        return RateHeaders(limit_requests=int(server.per_minute), remaining_requests=remaining,
                           reset_requests=ok_reset)

    while now < limit and any(j.done < j.records for j in jobs):
        for i, job in enumerate(jobs):
            ctl = job.controller
            while job.pending and now >= job.next_try:
                reserved = ctl.reservation(job.tokens)
                d = ctl.delay(reserved, now)
                if d > 0:
                    job.next_try = now + d if d != math.inf else math.inf
                    break
                permit = ctl.take(reserved, now)
                job.pending -= 1
                received += 1
                ok, retry, reset = server.admit(job.tokens if by_tokens else 1, now)
                seq += 1
                if ok:
                    admitted.append((now, job.tokens if by_tokens else 1))
                    recent.append(admitted[-1])
                    back = now + max(0.001, latency + rng.uniform(-jitter, jitter))
                    heapq.heappush(events, (back, seq, i, "ok", permit, None, headers(reset)))
                else:
                    rejected += 1
                    heapq.heappush(events, (now + reject_latency, seq, i, "429", permit, retry, headers(reset)))
        candidates = [events[0][0]] if events else []
        candidates += [j.next_try for j in jobs if j.pending and now < j.next_try < math.inf]
        if not candidates:
            break  # nothing in flight and nobody may send: the controller is stuck
        now = max(now, min(candidates))
        while events and events[0][0] <= now:
            t, _, i, kind, permit, retry, info = heapq.heappop(events)
            job = jobs[i]
            if kind == "ok":
                job.done += 1
                job.controller.on_answer(permit, job.tokens, info, t, job.tokens)
            else:
                job.pending += 1
                job.controller.on_rate_limited(permit, retry, info, t)
            job.next_try = t
    return Run(received, rejected, admitted, now)
