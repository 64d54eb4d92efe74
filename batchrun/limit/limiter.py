"""The async face of the rate controllers: workers wait here, in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

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


class Limiters:
    """One limiter per (base URL, model): models on one gateway have separate limits."""

    def __init__(
        self,
        base_url: str,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url
        self.rpm = rpm
        self.tpm = tpm
        self.clock = clock
        self.by_model: dict[str, Limiter] = {}

    def get(self, model: str) -> Limiter:
        """The limiter of a model, made on first use."""
        lim = self.by_model.get(model)
        if lim is None:
            ctl = RateController(self.rpm, self.tpm, now=self.clock())
            lim = self.by_model[model] = Limiter(ctl, self.clock)
        return lim

    @property
    def waited_s(self) -> float:
        """Seconds workers spent waiting on any limiter."""
        return sum(lim.waited_s for lim in self.by_model.values())

