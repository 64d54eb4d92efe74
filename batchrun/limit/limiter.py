"""The async face of the rate controllers: workers wait here, in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from batchrun.limit.controller import RateController


class Limiter:
    """The async face of a RateController: workers wait here, in arrival order."""

    def __init__(
        self,
        controller: RateController,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.controller = controller
        self.clock = clock
        self.waited_s = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int, give_up: asyncio.Event | None = None) -> bool:
        """Wait until a request of `tokens` may be sent and account it as sent: True.

        False, without taking anything, once `give_up` is set (a clean stop: a request that was
        never sent is not "in flight" and must not hold the drain up).
        """
        c = self.controller
        now = self.clock()
        if c.unlimited and now >= c.paused_until and not self._lock.locked():
            c.take(tokens, now)
            return True
        async with self._lock:
            while (d := c.delay(tokens, self.clock())) > 0:
                if give_up is not None and give_up.is_set():
                    return False
                started = self.clock()
                if give_up is None:
                    await asyncio.sleep(d)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(give_up.wait(), d)
                self.waited_s += self.clock() - started
            if give_up is not None and give_up.is_set():
                return False
            c.take(tokens, self.clock())
            return True


@dataclass(frozen=True, slots=True)
class LimitStatistics:
    """How one provider and model's limiter is doing, for the live display and the summary."""

    provider: str | None
    model: str
    rpm: float | None
    tpm: float | None
    source: str  # where the limits came from: flag, headers, probe
    rate_limited: int
    waited_s: float


class Limiters:
    """One limiter per provider and model: each provider limits each model on its own."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.clock = clock
        self._by_target: dict[tuple[str | None, str], Limiter] = {}

    def get(self, model: str, provider: str | None = None) -> Limiter:
        """The limiter of a provider's model (None: the default endpoint), made on first use."""
        lim = self._by_target.get((provider, model))
        if lim is None:
            ctl = RateController(self.rpm, self.tpm, now=self.clock())
            lim = self._by_target[(provider, model)] = Limiter(ctl, self.clock)
        return lim

    def statistics(self) -> tuple[LimitStatistics, ...]:
        """Each limiter's figures, in the order they were first used."""
        return tuple(
            LimitStatistics(provider, model, lim.controller.rpm, lim.controller.tpm,
                            lim.controller.rpm_source or lim.controller.tpm_source or "",
                            lim.controller.rate_limited, lim.waited_s)
            for (provider, model), lim in self._by_target.items()
        )

    @property
    def waited_s(self) -> float:
        """Seconds workers spent waiting on any limiter."""
        return sum(lim.waited_s for lim in self._by_target.values())
