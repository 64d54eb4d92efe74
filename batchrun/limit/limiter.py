"""The async face of the rate controllers: workers wait here, in arrival order."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchrun.limit.controller import RateController
from batchrun.limit.headers import RateHeaders
from batchrun.limit.permit import Permit

if TYPE_CHECKING:
    from batchrun.limit.shared import SharedLimit


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class StopSignal(asyncio.Event):
    """An Event that also wakes the futures given to it when set: a limiter's waiter sees a
    clean stop without a task watching the event."""

    def __init__(self) -> None:
        super().__init__()
        self._futures: set[asyncio.Future[None]] = set()

    def wakes(self, fut: asyncio.Future[None]) -> None:
        """Wake `fut` when this is set (at once if it already is)."""
        if self.is_set():
            _wake(fut)
        else:
            self._futures.add(fut)

    def forget(self, fut: asyncio.Future[None]) -> None:
        """`fut` no longer waits."""
        self._futures.discard(fut)

    def set(self) -> None:
        super().set()
        for fut in self._futures:
            _wake(fut)
        self._futures.clear()


class Limiter:
    """The async face of a RateController: workers wait here, in arrival order, and report back
    what became of each request, which may free the next one."""

    def __init__(
        self,
        controller: RateController,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedLimit | None = None,
    ) -> None:
        self.controller = controller
        self.clock = clock
        self.shared = shared  # --shared-limits: its turn is waited for after the controller's
        if shared is not None:
            controller.shared = True
        self.waited_s = 0.0
        self._lock = asyncio.Lock()
        self._head: asyncio.Future[None] | None = None  # what the first in the queue waits on

    async def acquire(self, est_tokens: int, give_up: asyncio.Event | None = None) -> Permit | None:
        """Wait until a request of about `est_tokens` may be sent and account it as sent. None,
        without taking anything, once `give_up` is set (a clean stop: a request that was never
        sent is not in flight and must not hold the drain up)."""
        c = self.controller
        now = self.clock()
        if c.unlimited and now >= c.paused_until and self.shared is None and not self._lock.locked():
            return c.take(c.reservation(est_tokens), now)
        async with self._lock:
            reserved = c.reservation(est_tokens)
            while (d := c.delay(reserved, self.clock())) > 0:
                if give_up is not None and give_up.is_set():
                    return None
                started = self.clock()
                await self._wait(d, give_up)
                if d != math.inf:  # waiting for the slow-start window to open is no rate limit
                    self.waited_s += self.clock() - started
                reserved = c.reservation(est_tokens)
            if give_up is not None and give_up.is_set():
                return None
            if self.shared is not None:
                waited = await self.shared.wait_turn(reserved, c, self.clock, give_up)
                if waited is None:
                    return None
                self.waited_s += waited
            return c.take(reserved, self.clock())

    async def _wait(self, seconds: float, give_up: asyncio.Event | None) -> None:
        """Until `seconds` pass (inf: until an answer comes back), an answer, or give_up.

        Only the head of the queue waits here (the others wait on the lock, in arrival order),
        on one future that a `loop.call_at` timer, an answer or a StopSignal wakes, as
        aiolimiter's `_wake_next` does: no task is started per wait."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._head = fut
        timer = None if seconds == math.inf else loop.call_at(loop.time() + seconds, _wake, fut)
        watch: asyncio.Future[Any] | None = None
        if isinstance(give_up, StopSignal):
            give_up.wakes(fut)
        elif give_up is not None:  # a plain Event: watched by a task, the slower way
            watch = asyncio.ensure_future(give_up.wait())
            watch.add_done_callback(lambda _: _wake(fut))
        try:
            await fut
        finally:
            self._head = None
            if timer is not None:
                timer.cancel()
            if watch is not None:
                watch.cancel()
            if isinstance(give_up, StopSignal):
                give_up.forget(fut)

    def answered(self, permit: Permit, charged: int | None, info: RateHeaders | None, est: int | None = None) -> None:
        """A request came back with anything but a 429 (charged None when it failed)."""
        self.controller.on_answer(permit, charged, info, self.clock(), est)
        if self._head is not None:
            _wake(self._head)

    def rate_limited(self, permit: Permit, retry_after: float | None, info: RateHeaders | None) -> None:
        """A request came back 429."""
        self.controller.on_rate_limited(permit, retry_after, info, self.clock())
        if self.shared is not None:
            self.shared.rate_limited(retry_after, self.clock())
        if self._head is not None:
            _wake(self._head)


@dataclass(frozen=True, slots=True)
class LimitStatistics:
    """How one provider and model's limiter is doing, for the live display and the summary."""

    provider: str | None
    model: str
    rpm: float | None
    tpm: float | None
    limit_rpm: float | None  # the limit a flag or the server stated, if any
    source: str  # where the limits came from: flag, headers, learned (from 429s alone)
    shape: str  # bucket or window, as the 429s tell; unknown before any
    rate_limited: int
    waited_s: float


class Limiters:
    """One limiter per provider and model: each provider limits each model on its own."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        ceiling: int = 1 << 20,
        provider_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
        shared: Callable[[str | None, str], SharedLimit] | None = None,
    ) -> None:
        self.shared = shared  # --shared-limits: each provider and model's limit through Redis
        self.ceiling = ceiling  # the job's concurrency: slow start stops there
        self.rpm = rpm
        self.tpm = tpm
        self.provider_limits = dict(provider_limits or {})  # a provider's own rpm/tpm, over the job's
        self.clock = clock
        self._by_target: dict[tuple[str | None, str], Limiter] = {}

    def get(self, model: str, provider: str | None = None) -> Limiter:
        """The limiter of a provider's model (None: the default endpoint), made on first use."""
        lim = self._by_target.get((provider, model))
        if lim is None:
            rpm, tpm = self.provider_limits.get(provider or "", (None, None))
            ctl = RateController(rpm or self.rpm, tpm or self.tpm, ceiling=self.ceiling, now=self.clock())
            lim = self._by_target[(provider, model)] = Limiter(
                ctl, self.clock, self.shared(provider, model) if self.shared else None)
        return lim

    def statistics(self) -> tuple[LimitStatistics, ...]:
        """Each limiter's figures, in the order they were first used."""
        return tuple(
            LimitStatistics(provider, model, c.rpm, c.tpm, c.limit_rpm, c.rpm_source or c.tpm_source or "",
                            c.shape, c.rate_limited, lim.waited_s)
            for (provider, model), lim in self._by_target.items()
            for c in (lim.controller,)
        )

    @property
    def waited_s(self) -> float:
        """Seconds workers spent waiting on any limiter."""
        return sum(lim.waited_s for lim in self._by_target.values())
