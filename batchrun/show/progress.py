"""The running figures and how they read, on one line or under the live bar."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LimitFigures:
    """How one model is being sent: its send rate, the limit in force and where it came from."""

    model: str
    rpm: float | None  # the rate we send at, per minute; None: as fast as answers come
    tpm: float | None
    limit_rpm: float | None  # the limit a flag or the server stated; None: not stated
    source: str
    rate_limited: int = 0


@dataclass(frozen=True, slots=True)
class ProgressFigures:
    """The running figures the progress display shows."""

    done: int
    total: int | None
    elapsed_s: float
    rps: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_unknown: bool
    retries: int
    errors: int
    in_flight: int
    limits: tuple[LimitFigures, ...] = ()
    wait_s: float = 0.0
    simulated: bool = False
    routing: str | None = None  # the canary's line, where one runs
    in_batches: int = 0  # lines answered in running provider batches, not yet collected (not done)


def _figures(s: ProgressFigures) -> list[str]:
    """The running figures shown both on plain lines and under the live bar."""
    cost = f"${s.cost_usd:.4f}" + ("+unknown" if s.cost_unknown else "")
    parts = [s.routing] if s.routing else []  # first: the line is cut at the terminal's width
    parts += [f"tokens {s.input_tokens} in / {s.output_tokens} out", f"cost {cost}",
             f"retries {s.retries}", f"errors {s.errors}", f"in flight {s.in_flight}"]
    if s.in_batches:
        parts.append(f"{s.in_batches} answered in batches, to collect")
    if s.limits:
        parts.append("limits " + "; ".join(_limit(lim) for lim in s.limits))
    if s.wait_s >= 0.05:
        parts.append(f"waited {s.wait_s:.1f}s on limits")
    return parts


def _per_min(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def _limit(lim: LimitFigures) -> str:
    """`gpt-4o-mini: 2400 rpm (headers), at 2400 rpm, 3 x 429` and the like."""
    stated = f"{_per_min(lim.limit_rpm)} rpm" if lim.limit_rpm else "limit not stated"
    tokens = f" / {_per_min(lim.tpm)} tpm" if lim.tpm else ""
    pace = f"at {_per_min(lim.rpm)} rpm" if lim.rpm else "unpaced"
    source = f" ({lim.source})" if lim.source else ""
    return f"{lim.model}: {stated}{tokens}{source}, {pace}, {lim.rate_limited} x 429"


def format_progress_line(s: ProgressFigures) -> str:
    """One plain progress line (without timestamp)."""
    total = f"/{s.total}" if s.total is not None else ""
    pct = f" ({100.0 * s.done / s.total:.1f}%)" if s.total else ""
    parts = [f"{s.done}{total} done{pct}", f"{s.rps:.1f} req/s", *_figures(s)]
    return ("[SIMULATED] " if s.simulated else "") + ", ".join(parts)


def status_parts(s: ProgressFigures) -> list[str]:
    """The figures under the live bar (the bar itself shows done, total and rate), most important
    first; each model's limits a figure of its own."""
    parts = _figures(s)
    if s.limits:
        at = next(i for i, p in enumerate(parts) if p.startswith("limits "))
        parts[at:at + 1] = [f"limits {_limit(lim)}" for lim in s.limits]
    return parts


def pack_lines(parts: list[str], width: int, gap: str = "  ") -> list[str]:
    """Parts side by side in lines of at most `width` columns: nothing is cut at a narrow terminal
    (a part wider than a line is wrapped at spaces on lines of its own)."""
    width = max(width, 20)
    lines: list[str] = []
    for part in parts:
        if len(part) > width:
            lines += textwrap.wrap(part, width, break_on_hyphens=False)
        elif lines and len(lines[-1]) + len(gap) + len(part) <= width:
            lines[-1] += gap + part
        else:
            lines.append(part)
    return lines

