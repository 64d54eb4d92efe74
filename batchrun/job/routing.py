"""A job's routing parts, wired: the planner with its canary, the shadow answers and their file,
and the summary's `providers`, `canary` and `shadow` sections.

The shadow file is written after its record's main line, so a crash between the two loses a
comparison, never duplicates a main line; its summary is read back from the file (the truth
after any crash), the last line of a key winning.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchrun.account.providers import Traffic, job_traffic, provider_rows
from batchrun.config import RunConfig
from batchrun.errors import BatchrunError, CircuitOpen
from batchrun.records import Record, Result
from batchrun.route.plan import Planner
from batchrun.route.providers import Targets
from batchrun.route.routes import Router
from batchrun.send.sender import Sender
from batchrun.show.console import Display
from batchrun.store.files import shadow_path
from batchrun.store.state import JobState
from batchrun.store.wire import read_result_lines, result_line

# The canary's and the shadow's modules load only for a job that has them.
if TYPE_CHECKING:
    from batchrun.route.shadow import ShadowConfig


def make_planner(cfg: RunConfig, state: JobState, clock: Callable[[], float],
                 on_change: Callable[[], None]) -> Planner | None:
    """The planner when anything is routed (None: every record goes to its own model)."""
    r = cfg.routing
    if not r.configured:
        return None
    canary = None
    if r.canary:
        from batchrun.route.canary import Canary

        canary = Canary.from_state(r.canary, clock, state.canary)
    planner = Planner(Router(r.route, cfg.model), canary, cfg.fallback_models)

    def changed() -> None:
        state.canary = canary.to_state() if canary else None
        on_change()

    planner.on_change = changed
    return planner


def canary_notice(planner: Planner | None) -> str | None:
    """What a resumed run says of a canary that was already decided: it holds."""
    c = planner.canary if planner is not None else None
    if c is None or c.state == "running":
        return None
    return (f"canary {c.config.model} was {c.state.replace('_', ' ')} in an earlier run ({c.reason}); that "
            "holds for this job (--fresh starts it over)")


class Shadowing:
    """Answers a share of records with the shadow model too, into the shadow file."""

    def __init__(self, config: ShadowConfig, sender: Sender, path: Path) -> None:
        self.config = config
        self.sender = sender
        self.path = path
        self._pending: dict[str, Result] = {}
        self.skipped = 0  # records picked but not shadowed: budget, refusal, provider down
        self._fd = -1

    def open(self) -> None:
        """Open for appending, cutting a torn last line a crash left."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as f:
                whole = sum(len(line.raw) for line in read_result_lines(f))
            if whole < size:
                os.ftruncate(self._fd, whole)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def wrap(self, send: Callable[[Record], Awaitable[Result]]) -> Callable[[Record], Awaitable[Result]]:
        """`send`, with the shadow model asked alongside for the records it picks."""
        picks, model = self.config.picks, self.config.model

        async def both(rec: Record) -> Result:
            if not picks(rec.key):
                return await send(rec)
            shadow = asyncio.ensure_future(self.sender.send_to(rec, model, "shadow"))
            try:
                main = await send(rec)
            except BaseException:
                shadow.cancel()  # the record goes again next run, shadow and all
                with contextlib.suppress(BaseException):
                    await shadow
                raise
            try:
                answer = await shadow
            except BatchrunError:  # out of budget, or the shadow's provider refused: no comparison
                self.skipped += 1
            else:
                if answer.error_code == CircuitOpen.code:  # its provider is down: not even tried
                    self.skipped += 1
                else:
                    self._pending[rec.key] = answer
            return main

        return both

    def written(self, main: Result) -> None:
        """The main line is written: now its shadow line, with whether the answers agree."""
        shadow = self._pending.pop(main.key, None)
        if shadow is None or self._fd < 0:
            return
        from batchrun.route.shadow import agree

        a, b = _text(main), _text(shadow)
        line = result_line(shadow, time.time(), {"agrees": None if a is None or b is None else agree(a, b)})
        with contextlib.suppress(OSError):  # the shadow file is a comparison, never the job's output
            os.write(self._fd, line)


def _text(r: Result) -> str | None:
    if not r.ok or r.raw_body is None:
        return None
    from batchrun.results.answer import answer_text

    try:
        return answer_text(orjson.loads(r.raw_body))
    except orjson.JSONDecodeError:
        return None


def shadow_figures(path: Path, model: str) -> dict[str, Any]:
    """The summary's `shadow`: compared, agreement and cost, read back from the shadow file.
    `cost_usd` is unknown (None) while any answer has no price, never counted as $0;
    `known_cost_usd` is what is known to be spent, for --max-cost."""
    from batchrun.results.shadow_file import ShadowFile, read_shadow

    return (read_shadow(path) or ShadowFile()).figures(model)


def routing_summary(cfg: RunConfig, state: JobState, planner: Planner | None, shadow_path_: Path,
                    summ: dict[str, Any]) -> dict[str, Any]:
    """The summary with its `providers`, `canary` and `shadow` sections, where configured; the
    shadow's cost is counted in the total and its split (everything billed)."""
    r = cfg.routing
    out = dict(summ)
    traffic = job_traffic(state.stats)
    if r.shadow is not None:
        from batchrun.results.shadow_file import ShadowFile, read_shadow

        reading = read_shadow(shadow_path_) or ShadowFile()  # one reading
        reading.model = r.shadow.model
        out["shadow"] = reading.figures()
        reading.add_cost(out)
        traffic.append(Traffic(r.shadow.model, reading.requests, reading.answers, reading.rate_limited,
                               None if reading.unknown_cost else reading.known_cost_usd, shadow=True))
    if r.providers:
        targets = Targets(p.name for p in r.providers)
        out["providers"] = provider_rows(traffic, lambda model: targets(model).provider or "default")
    canary = canary_section(cfg, state, planner)
    if canary is not None:
        out["canary"] = canary
    return out


def canary_section(cfg: RunConfig, state: JobState, planner: Planner | None) -> dict[str, Any] | None:
    """The summary's `canary`: its state and both arms side by side; None without a canary."""
    config = cfg.routing.canary
    if config is None:
        return None
    c = planner.canary if planner is not None else None
    saved = c.to_state() if c is not None else (state.canary or {})
    return {
        "model": config.model, "share": saved.get("share", config.share),
        "state": saved.get("state", "running"), "reason": saved.get("reason"),
        "changed_at": saved.get("at"), "judged": saved.get("judged", 0), "records_at_change": saved.get("records"),
        "threshold": saved.get("threshold"), "steps": saved.get("steps", []), "first_share": config.share,
        "thresholds": saved.get("thresholds"),
        "baseline": state.arms.baseline.figures(), "canary": state.arms.canary.figures(),
    }


@contextlib.contextmanager
def shadow_open(shadow: Shadowing | None, fresh: bool) -> Any:
    """The shadow file open for the run (emptied with --fresh, like the output)."""
    if shadow is None:
        yield
        return
    if fresh:
        shadow.path.unlink(missing_ok=True)
    shadow.open()
    try:
        yield
    finally:
        shadow.close()


def warn_routing(cfg: RunConfig, planner: Planner | None, shadow: Shadowing | None, summ: dict[str, Any],
                 display: Display) -> None:
    """What the routing tables did that a person should hear of: a route field no record had
    (likely a typo), and a shadow that failed or was skipped (it never stops the job)."""
    route = cfg.routing.route
    if planner is not None and route is not None and route.field and not planner.router.field_seen:
        display.warn(f"[route] field {route.field!r}: no record sent this run has that field, so no record "
                     "was routed by it")
    figures = summ.get("shadow")
    if figures and figures["failed"]:
        display.warn(f"shadow {figures['model']}: {figures['failed']} of {figures['answered']} shadow request(s) "
                     f"failed (their error lines are in {shadow_path(cfg.output)})")
    if shadow is not None and shadow.skipped:
        display.warn(f"shadow {shadow.config.model}: {shadow.skipped} record(s) picked for the shadow were not "
                     "shadowed this run (its provider was down or refused, or --max-cost had no room)")
