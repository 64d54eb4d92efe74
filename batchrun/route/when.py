"""`--deadline WHEN`: a time or a duration, parsed without a clock and fixed with one.

WHEN is a moment (`2026-12-08T08:00Z`; `08:00`, the next one; UTC unless a zone is given, as an
offset or an IANA name: `08:00 Europe/Paris`) or a duration (`8h`, `90m`, `75s`, `1h30m`, `2d`)
counted from the job's first run. Parsing needs no clock, so a bad value is refused before
anything runs; `When.at(now)` turns it into epoch seconds once, on the run that fixes it in the
checkpoint, so cron reruns keep the same deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from batchrun.errors import ConfigError

GOOD = ("a time such as 2026-12-08T08:00Z or 08:00 (the next one; UTC unless a zone is given), "
        "or a duration such as 8h, 90m or 75s")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(Z|[+-]\d{2}:?\d{2})?(?:\s+([A-Za-z_]+(?:/[A-Za-z_+-]+)*))?")


@dataclass(frozen=True, slots=True)
class When:
    """One parsed WHEN: exactly one of `moment`, `clock` or `duration_s` is set."""

    text: str
    moment: datetime | None = None  # an absolute time, zone-aware
    clock: tuple[int, int, int, tzinfo] | None = None  # hour, minute, second, zone: the next one
    duration_s: float | None = None  # from the job's first run

    def at(self, now: float) -> float:
        """The deadline in epoch seconds, for a job whose first run is at `now`."""
        if self.duration_s is not None:
            return now + self.duration_s
        if self.moment is not None:
            return self.moment.timestamp()
        assert self.clock is not None
        h, m, s, zone = self.clock
        local = datetime.fromtimestamp(now, zone)
        t = local.replace(hour=h, minute=m, second=s, microsecond=0)
        if t.timestamp() <= now:
            t = (local + timedelta(days=1)).replace(hour=h, minute=m, second=s, microsecond=0)
        return t.timestamp()


def parse_when(text: str) -> When:
    """A WHEN from its text; ValueError (for the option's one sentence) when it is none."""
    raw = text.strip()
    v = raw.replace(" ", "")
    if _DURATION.fullmatch(v):
        total = sum(float(n) * _UNITS[u] for n, u in _PART.findall(v))
        if not 0 < total < float("inf"):
            raise ValueError(text)
        return When(raw, duration_s=total)
    c = _CLOCK.fullmatch(raw)
    if c:
        h, m, s = int(c[1]), int(c[2]), int(c[3] or 0)
        if h > 23 or m > 59 or s > 59:
            raise ValueError(text)
        return When(raw, clock=(h, m, s, _zone(c[4], c[5])))
    return When(raw, moment=_moment(raw))


def _zone(offset: str | None, name: str | None) -> tzinfo:
    if offset and name:
        raise ValueError(name)
    if name:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only a zone's name needs it (and sysconfig)

        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(name) from None
    if not offset or offset == "Z":
        return UTC
    return datetime.strptime(offset.replace(":", ""), "%z").tzinfo or UTC


def _moment(raw: str) -> datetime:
    """An ISO date and time; no zone means UTC. A bare date is not a deadline (which hour?)."""
    parts = raw.split()
    name = parts.pop() if len(parts) == 2 and "/" in parts[-1] else None
    iso = " ".join(parts)
    if "T" not in iso and " " not in iso:
        raise ValueError(raw)
    t = datetime.fromisoformat(iso)  # ValueError for what is not a time
    if name is not None:
        if t.tzinfo is not None:
            raise ValueError(raw)
        return t.replace(tzinfo=_zone(None, name))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def describe_in(seconds: float) -> str:
    """A span for a sentence: `8 h`, `11 h`, `90 min`, `75 s`, `2.5 d`."""
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        h = s / 3600
        return f"{h:.0f} h" if h >= 10 else f"{h:.1f} h".replace(".0 h", " h")
    return f"{s / 86400:.1f} d"


def iso_utc(epoch: float) -> str:
    """A deadline as people read it in a checkpoint or a table."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fix_deadline(saved: dict[str, Any] | None, when: When | None, now: float) -> tuple[dict[str, Any] | None, str]:
    """The job's deadline for the checkpoint (`{"at": epoch, "given": text, "set_at": epoch}`) and a note for the
    user ('' when none). The first run that names one fixes it; later runs keep it, whatever
    they pass, so a cron line's `--deadline 8h` does not move it on every run."""
    if saved is not None:
        if when is not None and when.text != saved.get("given"):
            return saved, (f"the job's deadline stays {iso_utc(float(saved['at']))} (fixed on its first run by "
                           f"--deadline {saved.get('given')}); --deadline {when.text} is ignored (--fresh starts over)")
        return saved, ""
    if when is None:
        return None, ""
    return {"at": deadline_at(when, now), "given": when.text, "set_at": now}, ""


def deadline_at(when: When, now: float) -> float:
    """The deadline as epoch seconds; one already past is the user's mistake."""
    at = when.at(now)
    if at <= now:
        raise ConfigError(f"--deadline {when.text}: {iso_utc(at)} is already past")
    return at


@dataclass(frozen=True, slots=True)
class Margin:
    """`--deadline-margin`: how early the plan aims to finish, as a share of the time to the
    deadline (`10%`) or a duration (`5m`)."""

    text: str
    share: float | None = None
    seconds: float | None = None

    def of(self, span_s: float) -> float:
        """The margin in seconds for a deadline `span_s` away."""
        return self.seconds if self.seconds is not None else (self.share or 0.0) * max(0.0, span_s)


DEFAULT_MARGIN = Margin("10%", share=0.10)
MARGIN_GOOD = "a share of the time left such as 10% (from 0% to 90%), or a duration such as 5m or 30s"


def parse_margin(text: str) -> Margin:
    """A margin from its text; ValueError when it is none."""
    v = text.strip().replace(" ", "")
    if v.endswith("%"):
        share = float(v[:-1]) / 100
        if not 0 <= share <= 0.9:
            raise ValueError(text)
        return Margin(v, share=share)
    if v in ("0", "0s"):
        return Margin(v, seconds=0.0)
    w = parse_when(v)
    if w.duration_s is None:
        raise ValueError(text)
    return Margin(v, seconds=w.duration_s)
