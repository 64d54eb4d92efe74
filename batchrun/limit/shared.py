"""One key's limit shared by every process that names the same Redis (`--shared-limits URL`).

The state of a provider + model + key lives in one Redis hash, named by a hash of the three (the
key itself is never written): the stated limits, the learned rate after a cut, one request and
one token bucket (levels may go below zero: a reservation in debt says how long to wait), the
pause a 429 asked for, and the processes seen lately. One Lua script reads and writes it
atomically on Redis's own clock, so hosts whose clocks differ agree.

A process takes a lease at once: a slice of its share of the next tenth of a second, spent locally
without asking Redis again; a lease not spent within LEASE_TTL_S is dropped, and one held by a
process killed with kill -9 is only the budget it had already taken. The hash expires when no
process has touched it for STATE_TTL_S; a process that joins while others run reads the stated
limit from it and starts at the shared rate, with no slow start.

Redis down or unreachable: said once; the process goes on with its own limits at a conservative
share (the limit divided by the processes last seen), and tries Redis again every RETRY_S. With
`--shared-limits-required` the job stops instead (exit 75). The Redis client (`redis-py`, the
`[redis]` extra) is imported only here, when the option is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from batchrun.errors import ConfigError, ProviderDown
from batchrun.limit.controller import RateController
from batchrun.limit.permit import RateSource
from batchrun.limit.shared_script import SCRIPT
from batchrun.secret import ApiKey, redact_url

# A lease is this process's share of this many seconds of the limit, taken in one round trip.
LEASE_S = 0.1
MAX_LEASE = 16  # requests in one lease at most
LEASE_TTL_S = 0.5  # a lease not spent by then is dropped: the budget it held has passed
STATE_TTL_S = 60  # the shared state of a key nobody uses vanishes after this
ACTIVE_S = 3.0  # a process not heard from for this long no longer counts toward the shares
MAX_DEBT_S = 1.0  # a reservation further out than this is not taken: ask again then
RETRY_S = 10.0  # Redis down: try it again after this long
CUT = 0.9  # a 429 cuts the shared rate to this share of it, once per second at most
RECOVER_PER_S = 0.02  # then it grows back by this share of the limit a second



def limit_name(provider: str, model: str, key: str | None) -> str:
    """The Redis key of one provider + model + API key's state: a hash, never the key itself."""
    digest = hashlib.blake2b(f"{provider}\0{model}\0{key or ''}".encode(), digest_size=16,
                             person=b"batchrun-limit").hexdigest()
    return f"batchrun:limit:{digest}"


class SharedLimits:
    """The connection to one Redis, and each provider + model's shared limit through it."""

    def __init__(self, url: str, *, required: bool, warn: Callable[[str], None]) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError:
            raise ConfigError("--shared-limits needs the Redis client: pip install 'batchrun[redis]'") from None
        self.shown = re.sub(r"(password=)[^&]*", r"\1***", redact_url(url))  # unix://...?password=
        self._password = _password(url)
        try:
            # no retries with backoff inside the client: a failure is handled here, once, at once
            self._client: Any = aioredis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0,
                                                  retry_on_timeout=False, retry=Retry(NoBackoff(), 0))
        except ValueError:
            raise ConfigError(f"--shared-limits {self.shown} is not a Redis URL (redis://HOST:PORT/DB)") from None
        self._script = self._client.register_script(SCRIPT)
        self.required = required
        self.warn = warn
        self.proc = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.down_until = 0.0  # Redis failed: local limits until then
        self.warned = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def limit(self, provider: str, model: str, key: str | None) -> SharedLimit:
        """The shared limit of one provider + model + key."""
        return SharedLimit(self, limit_name(provider, model, key))

    async def call(self, name: str, now: float, *args: Any) -> list[Any] | None:
        """Run the script once; None while Redis does not answer (said once)."""
        if now < self.down_until:
            return None
        try:
            reply: list[Any] = await self._script(keys=[name, name + ":procs"], args=[
                *args, STATE_TTL_S, RECOVER_PER_S, ACTIVE_S, MAX_DEBT_S, CUT])
        except Exception as e:  # redis-py's errors, OSError, a timeout: Redis is not there for us
            self._failed(e, now)
            return None
        if self.warned and self.down_until:
            self.warn(f"shared limits: Redis at {self.shown} answers again; sharing the limit through it")
            self.down_until = 0.0
        return reply

    async def check(self) -> None:
        """Ask Redis once (a wrong URL or password is said before anything is sent)."""
        try:
            await self._client.ping()
        except Exception as e:  # as in call: any failure means Redis is not there for us
            self._failed(e, time.monotonic())

    def _failed(self, e: BaseException, now: float) -> None:
        why = str(e) or type(e).__name__
        if self._password:
            why = why.replace(self._password, "***")
        message = f"shared limits: Redis at {self.shown} does not answer ({why})"
        if self.required:
            raise ProviderDown(message + "; stopping, as --shared-limits-required asks")
        self.down_until = now + RETRY_S
        if not self.warned:
            self.warned = True
            self.warn(message + "; going on with this process's own limits at a conservative share")

    def spawn(self, coro: Any) -> None:
        """Run a report to Redis in the background (a 429 pausing the others)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for reports under way, then close the connection."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()


class SharedLimit:
    """What the Limiter asks before it lets a request go: `admit`, and `rate_limited` on a 429."""

    def __init__(self, owner: SharedLimits, name: str) -> None:
        self.owner = owner
        self.name = name
        self.active = 1  # processes on this key, as Redis last said
        self._lease = 0  # requests left in the lease
        self._lease_tokens = 0
        self._from = 0.0  # the lease may be spent from then (its reservation's wait) ...
        self._until = 0.0  # ... until then
        self._local = False  # Redis is down: the controller runs on its own

    async def wait_turn(
        self, reserved: int, ctl: RateController, clock: Callable[[], float], give_up: asyncio.Event | None,
    ) -> float | None:
        """The Limiter's hook, once its controller lets a request go: wait until the shared limit
        does too. Seconds waited; None once `give_up` is set (nothing taken)."""
        waited = 0.0
        while (d := await self.admit(reserved, ctl, clock())) > 0:
            # the shared budget is reserved for then: no answer makes it come sooner; a pause
            # that came meanwhile is waited out too
            started = clock()
            if give_up is None:
                await asyncio.sleep(d)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(give_up.wait(), d)
                if give_up.is_set():
                    return None
            if (pause := ctl.paused_until - clock()) > 0:
                await asyncio.sleep(pause)
            waited += clock() - started
        return waited

    async def admit(self, reserved: int, ctl: RateController, now: float) -> float:
        """0 when a request reserving `reserved` tokens may go now (taken from the lease), else
        how long to wait before asking again (a lease taken now is ready by then)."""
        if self._lease > 0 and self._from <= now + 0.002 < self._until and (  # a timer may fire a hair early
                ctl.tokens is None or self._lease_tokens >= reserved):
            self._lease -= 1
            self._lease_tokens -= reserved
            return 0.0
        rpm, tpm = _stated(ctl)
        reply = await self.owner.call(self.name, now, "take", self.owner.proc, MAX_LEASE, reserved,
                                      rpm or 0, tpm or 0, LEASE_S)
        if reply is None:
            self._go_local(ctl, now)
            return 0.0
        self._back_to_shared(ctl, now)
        n, wait, lr, lt, self.active = int(reply[0]), float(reply[1]), float(reply[2]), float(reply[3]), int(reply[4])
        if (lr and rpm is None) or (lt and tpm is None):
            ctl.stated(lr or None, lt or None, now)  # another process learned the limit: no slow start
        if n == 0:
            return max(wait, 0.001)
        self._lease, self._lease_tokens = n, n * reserved
        self._from, self._until = now + wait, now + wait + LEASE_TTL_S
        if wait > 0:
            return wait  # the lease is ready then: the next admit spends it
        self._lease -= 1
        self._lease_tokens -= reserved
        return 0.0

    def rate_limited(self, retry_after: float | None, now: float) -> None:
        """A 429 here pauses every process on the key and cuts the shared rate."""
        self._lease = 0
        self.owner.spawn(self.owner.call(self.name, now, "429", self.owner.proc, 0, 0, 0, 0,
                                         retry_after if retry_after is not None else 0.1))

    def _go_local(self, ctl: RateController, now: float) -> None:
        """Redis is down: this process's own limits, at its share of the limit as last seen."""
        if self._local:
            return
        self._local, ctl.shared = True, False
        if ctl.requests is not None and ctl.limit_rpm and ctl.fixed_rpm is None:
            ctl.requests.set_per_minute(ctl.limit_rpm / max(1, self.active), now)

    def _back_to_shared(self, ctl: RateController, now: float) -> None:
        """Redis answers again: the shared bucket paces; the local one goes back to the limit."""
        if self._local:
            self._local, ctl.shared = False, True
            if ctl.requests is not None and ctl.limit_rpm and ctl.fixed_rpm is None:
                ctl.requests.set_per_minute(ctl.limit_rpm, now)


def _stated(ctl: RateController) -> tuple[float | None, float | None]:
    """The limits this process knows from a flag or the server's headers (not learned ones)."""
    known = (RateSource.FLAG, RateSource.HEADERS)
    rpm = ctl.limit_rpm if ctl.rpm_source in known else None
    tpm = ctl.tokens.per_minute if ctl.tokens is not None and ctl.tpm_source in known else None
    return rpm, tpm


def _password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def shared_limits(
    url: str | None, required: bool, warn: Callable[[str], None], endpoints: Mapping[str | None, tuple[str, ApiKey]],
) -> AsyncIterator[Callable[[str | None, str], SharedLimit] | None]:
    """Each provider (None: the default endpoint, named by its URL) + model's shared limit, for
    Limiters; None without --shared-limits. Redis is asked once here, so a wrong URL is said
    before the first request."""
    if not url:
        yield None
        return
    limits = SharedLimits(url, required=required, warn=warn)
    await limits.check()

    def limit(provider: str | None, model: str) -> SharedLimit:
        base_url, key = endpoints[provider]
        return limits.limit(provider or redact_url(base_url), model, key.reveal())

    try:
        yield limit
    finally:
        await limits.close()
