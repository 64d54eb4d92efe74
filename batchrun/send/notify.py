"""`--notify URL`: one JSON POST per job event, off the hot path.

A job puts events on a bounded queue (never waits on it: a full queue drops the event) and one
background task posts them in order, each with a short timeout and one retry. A receiver that is
down or hangs costs the job nothing but that task's time; the first failure is said once in the
log. Each body has a `text` a person reads (a Slack or Mattermost incoming webhook takes it as it
is) beside the structured fields.

Other steps (the Batch API queue) raise an event through `notify(event, text, **fields)`, which
reaches the running job's notifier (a context variable; a no-op when no job notifies).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from batchrun.clock import now_iso
from batchrun.errors import ConfigError
from batchrun.secret import redact_url

if TYPE_CHECKING:  # imported when notifications are on: a plain live job does not load aiohttp
    import aiohttp

# Every event a job may post; `[notify] on` chooses among them.
CANARY_ROLLED_BACK = "canary_rolled_back"
CANARY_PROMOTED = "canary_promoted"
RAMP_STEP = "ramp_step"
JOB_STOPPED = "job_stopped"
BUDGET = "budget"
# --batch-api: shards refused for the provider's enqueued-token queue (raised from batch/)
BATCH_QUEUE_REFUSED = "batch_queue_refused"
JOB_COMPLETE = "job_complete"
EVENTS = (CANARY_ROLLED_BACK, CANARY_PROMOTED, RAMP_STEP, JOB_STOPPED, BUDGET, BATCH_QUEUE_REFUSED, JOB_COMPLETE)

TIMEOUT_S = 5.0  # one POST at most, connect to last byte
FLUSH_S = 1.0  # at the job's end, the longest wait for events still queued
QUEUE_SIZE = 64


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Where to post and what: `--notify` / BATCHRUN_NOTIFY_URL / `[notify]`."""

    url: str | None = None
    on: tuple[str, ...] = EVENTS
    budget_alerts: tuple[float, ...] = (0.5, 0.8)


def parse_notify(t: Any, url: str | None, where: str) -> NotifyConfig:
    """The `[notify]` table with the option's URL over its `url`; ConfigError naming the key."""
    t = {} if t is None else t
    here = f"config file {where}: [notify]"
    unknown = sorted(set(t) - {"url", "on", "budget_alerts"})
    if unknown:
        raise ConfigError(f"{here}: unknown key {unknown[0]!r} (expected url, on, budget_alerts)")
    url = url or t.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise ConfigError("the notify URL (--notify, BATCHRUN_NOTIFY_URL or [notify] url) must be an http(s) URL")
    on = t.get("on", list(EVENTS))
    if not isinstance(on, list) or any(e not in EVENTS for e in on):
        raise ConfigError(f"{here}: on must be a list of events from {', '.join(EVENTS)}")
    shares = t.get("budget_alerts", [0.5, 0.8])
    if not isinstance(shares, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1 for v in shares):
        raise ConfigError(f"{here}: budget_alerts must be a list of shares of --max-cost, over 0 and up to 1")
    return NotifyConfig(url, tuple(on), tuple(sorted(float(v) for v in shares)))


class Notifier:
    """The job's one poster. `notify` never blocks; `running()` owns the posting task."""

    def __init__(self, url: str, on: tuple[str, ...], warn: Callable[[str], None],
                 scrub: Callable[[str], str] = lambda s: s, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.on = frozenset(on)
        self.warn = warn
        self.scrub = scrub  # takes any key out of a body before it leaves
        self.timeout_s = timeout_s
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.queued = 0
        self.posting_since: float | None = None  # monotonic start of the post in progress

    def notify(self, event: str, text: str, **fields: Any) -> None:
        """Queue one event's body; dropped (and counted) when the queue is full."""
        if event not in self.on:
            return
        body = {"event": event, "text": text, "at": now_iso(), "time": round(time.time(), 3), **fields}
        data = self.scrub(orjson.dumps(body, default=str).decode()).encode()
        try:
            self.queue.put_nowait(data)
            self.queued += 1
        except asyncio.QueueFull:
            self.dropped += 1

    @contextlib.asynccontextmanager
    async def running(self, flush_s: float = FLUSH_S) -> AsyncIterator[Notifier]:
        """Post while the block runs; at its end wait at most `flush_s` for what is queued."""
        import aiohttp

        token = _CURRENT.set(self)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            task = asyncio.create_task(self._post_all(session))
            try:
                yield self
            finally:
                _CURRENT.reset(token)
                # a receiver already failing, or hanging on a post for longer than the flush, would
                # only hold the job's end: what is queued is let go (and said)
                stuck = self.posting_since is not None and time.monotonic() - self.posting_since > flush_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.queue.join(), 0 if self.failed or stuck else flush_s)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                left = self.queued - self.sent - self.failed + self.dropped  # the one being posted too
                if left and not self.failed:
                    self.warn(f"{left} notification(s) to {self.shown_url} were not sent before the job ended")

    async def _post_all(self, session: aiohttp.ClientSession) -> None:
        while True:
            data = await self.queue.get()
            self.posting_since = time.monotonic()
            try:
                await self._post(session, data)
            finally:
                self.posting_since = None
                self.queue.task_done()

    async def _post(self, session: aiohttp.ClientSession, data: bytes) -> None:
        """One event: a try and one retry; a failure is said once per job."""
        import aiohttp

        why = ""
        for _ in range(2):
            try:
                async with session.post(self.url, data=data, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status < 400:
                        self.sent += 1
                        return
                    why = f"HTTP {r.status}"
            except TimeoutError:
                why = f"no answer within {self.timeout_s:g}s"
            except aiohttp.ClientError as e:
                why = type(e).__name__ if isinstance(e, aiohttp.ClientResponseError) else _reason(e)
        self.failed += 1
        if self.failed == 1:
            self.warn(f"could not notify {self.shown_url} ({why}); the job goes on, and further "
                      "notification failures are not logged")


def _reason(e: aiohttp.ClientError) -> str:
    import aiohttp

    if isinstance(e, aiohttp.ClientConnectorError):
        return f"cannot connect: {e.os_error.strerror or e.os_error}"
    return type(e).__name__


_CURRENT: contextvars.ContextVar[Notifier | None] = contextvars.ContextVar("batchrun_notifier", default=None)


def notify(event: str, text: str, **fields: Any) -> None:
    """Post an event through the running job's notifier, if it has one (never blocks, never
    raises). `text` is what a person reads; keep fields to plain JSON values."""
    notifier = _CURRENT.get()
    if notifier is not None:
        notifier.notify(event, text, **fields)
