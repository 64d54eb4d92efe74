"""What the bundled genai-prices snapshot says of a model, kept on disk between runs.

Loading the snapshot imports pydantic models of every provider (a tenth of a second and more):
more than a one-record cron job spends on anything else. The answer for a (model, base URL) is
kept in `$BATCHRUN_CACHE_DIR` (default `~/.cache/batchrun`) in a file named for the installed
snapshot's size and modification time, so an upgraded genai-prices is read afresh: the cache only
ever repeats what the installed snapshot says. A price that depends on the time keeps its
constraint: a daily UTC window (DeepSeek's off-peak hours) or a start date, rebuilt here with
genai-prices' own rules (`DailyWindow`, `Since`; tested against its classes minute by minute); a
constraint of any other kind is not kept, and read from the snapshot each run.
A cache that cannot be read or written is skipped without a word.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from batchrun.account.prices import Price, Rate
from batchrun.account.snapshot import UNKNOWN, Entry, Period

MAX_ENTRIES = 500


def cached_entry(model: str, base_url: str | None, look_up: Callable[[str, str | None], Entry]) -> Entry:
    """The snapshot's entry for a model, from the cache, else from `look_up` (then kept)."""
    store = _store()
    if store is None:
        return look_up(model, base_url)
    path, known = store
    key = f"{_place(base_url)} {model}"
    if key in known:
        entry = _decode(known[key])
        if entry is not None:
            return entry
    entry = look_up(model, base_url)
    encoded = _encode(entry)
    if encoded is not None:
        if len(known) >= MAX_ENTRIES:  # bounded, whatever runs and URLs come and go
            known.clear()
        known[key] = encoded
        _save(path, known)
    return entry


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """genai-prices' TimeOfDateConstraint: a daily interval in UTC, wrapping past midnight when it
    ends before it starts; a request's time is UTC when it has no zone."""

    start: time  # UTC-aware
    end: time

    def active(self, when: datetime) -> bool:
        """Does the interval hold at `when`?"""
        at = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).astimezone(UTC).timetz()
        if self.end < self.start:
            return at >= self.start or at < self.end
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class Since:
    """genai-prices' StartDateConstraint: from a UTC date on; a request's time is UTC when it has no zone."""

    start: date

    def active(self, when: datetime) -> bool:
        """Has the date come at `when`?"""
        return (when.astimezone(UTC) if when.tzinfo is not None else when).date() >= self.start


def _utc(t: time) -> time:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else datetime.combine(date(1970, 1, 1), t).astimezone(UTC).timetz()


def _constraint(active: Callable[[datetime], bool] | None) -> Any:
    """A period's constraint in the cache's form; False where it has none this cache can keep."""
    if active is None:
        return None
    owner: Any = getattr(active, "__self__", None)
    kind = type(owner).__name__  # by name: importing genai-prices' classes is what the cache spares a job
    if kind in ("TimeOfDateConstraint", "DailyWindow"):
        start, end = (owner.start_time, owner.end_time) if kind == "TimeOfDateConstraint" else (owner.start, owner.end)
        return ["daily", _utc(start).isoformat(), _utc(end).isoformat()]
    if kind in ("StartDateConstraint", "Since"):
        since = owner.start_date if kind == "StartDateConstraint" else owner.start
        return ["since", since.isoformat()] if type(since) is date else False
    return False


def _unconstraint(v: Any) -> Callable[[datetime], bool] | None:
    if v is None:
        return None
    if v[0] == "daily":
        return DailyWindow(time.fromisoformat(v[1]), time.fromisoformat(v[2])).active
    if v[0] == "since":
        return Since(date.fromisoformat(v[1])).active
    raise ValueError(f"unknown constraint {v[0]!r}")


def _place(base_url: str | None) -> str:
    """The URL as the snapshot tells providers apart: every loopback address and port is one
    place (no provider is served there), so simulators on fresh ports share one entry."""
    if base_url is None:
        return ""
    host = urlsplit(base_url).hostname or ""
    return "loopback" if host in ("localhost", "::1") or host.startswith("127.") else base_url


@cache
def _store() -> tuple[Path, dict[str, Any]] | None:
    spec = importlib.util.find_spec("genai_prices")  # finds the package without importing it
    places = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not places:
        return None
    try:
        st = (Path(places[0]) / "data.py").stat()
        root = Path(os.environ.get("BATCHRUN_CACHE_DIR") or Path.home() / ".cache" / "batchrun")
    except (OSError, RuntimeError):  # no snapshot file, or no home to find the cache in
        return None
    path = root / f"genai-prices-{st.st_size}-{st.st_mtime_ns}.json"
    try:
        known = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        known = {}
    return path, known if isinstance(known, dict) else {}


def _save(path: Path, known: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(orjson.dumps(known))
        os.replace(tmp, path)  # whole or not at all, whichever run writes last
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def _rate(r: Rate | None) -> Any:
    return None if r is None else [str(r.base), [[start, str(p)] for start, p in r.tiers]]


def _unrate(v: Any) -> Rate | None:
    return None if v is None else Rate(Decimal(v[0]), tuple((int(s), Decimal(p)) for s, p in v[1]))


def _encode(entry: Entry) -> Any:
    """The entry in the cache's form; None where a constraint of it cannot be kept."""
    constraints = [_constraint(p.active) for p in entry.periods]
    if False in constraints:
        return None
    return {"window": entry.window, "periods": [
        [_rate(p.price.input), _rate(p.price.output), _rate(p.price.cached_input), p.price.source, p.label, c]
        for p, c in zip(entry.periods, constraints, strict=True)]}


def _decode(doc: Any) -> Entry | None:
    """The entry, or None where the cached form is not one this version wrote."""
    try:
        periods = []
        for inp, out, cached, source, label, constraint in doc["periods"]:
            rate = _unrate(inp)
            if rate is None:
                return None
            periods.append(Period(Price(rate, _unrate(out), _unrate(cached), str(source)), _unconstraint(constraint),
                                  str(label)))
        window = doc["window"]
        if not periods and window is None:
            return UNKNOWN
        return Entry(tuple(periods), window if isinstance(window, int) else None)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
