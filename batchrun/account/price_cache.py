"""What the bundled genai-prices snapshot says of a model, kept on disk between runs.

Loading the snapshot imports pydantic models of every provider (a tenth of a second and more):
more than a one-record cron job spends on anything else. The answer for a (model, base URL) is
kept in `$BATCHRUN_CACHE_DIR` (default `~/.cache/batchrun`) in a file named for the installed
snapshot's size and modification time, so an upgraded genai-prices is read afresh: the cache only
ever repeats what the installed snapshot says. Only prices that hold at every hour are kept;
a model whose price depends on the time (DeepSeek's off-peak hours) is read from the snapshot.
A cache that cannot be read or written is skipped without a word.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable
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
    if all(p.active is None for p in entry.periods):
        if len(known) >= MAX_ENTRIES:  # bounded, whatever runs and URLs come and go
            known.clear()
        known[key] = _encode(entry)
        _save(path, known)
    return entry


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
    return {"window": entry.window, "periods": [
        [_rate(p.price.input), _rate(p.price.output), _rate(p.price.cached_input), p.price.source, p.label]
        for p in entry.periods]}


def _decode(doc: Any) -> Entry | None:
    """The entry, or None where the cached form is not one this version wrote."""
    try:
        periods = []
        for inp, out, cached, source, label in doc["periods"]:
            rate = _unrate(inp)
            if rate is None:
                return None
            periods.append(Period(Price(rate, _unrate(out), _unrate(cached), str(source)), None, str(label)))
        window = doc["window"]
        if not periods and window is None:
            return UNKNOWN
        return Entry(tuple(periods), window if isinstance(window, int) else None)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
