"""A canary's decision in words, the same in the terminal summary, `status` and the HTML report:
what was decided, when, after how many canary answers, on which threshold, with the figure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def when(epoch: float | None) -> str:
    """' at <UTC time>', or '' where the time is unknown."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime(" at %Y-%m-%d %H:%M:%S UTC")


def per_1k(arm: dict[str, Any]) -> str:
    """Cost per 1,000 answered records with the answers it is over; "—" where none answered (an
    arm that answered nothing must not look cheap)."""
    n = arm.get("answered", arm.get("succeeded", 0))
    if not n:
        return "—"
    cost = arm.get("cost_per_1k_answered_usd")
    return f"{'unknown' if cost is None else f'${cost:.6f}'} ({n} answered)"


def thresholds_words(t: dict[str, Any] | None) -> str:
    """The thresholds a canary was judged on, as the config names them ('' when unknown)."""
    if not t:
        return ""
    p95 = f"{t['max_p95_ms']:g} ms" if t.get("max_p95_ms") else "off"
    return (f"window {t['window']}, max_error_rate {t['max_error_rate']:g}, min_success_rate "
            f"{t['min_success_rate']:g}, max_p95_ms {p95}, max_consecutive_failures {t['max_consecutive_failures']}")


def canary_decision(c: dict[str, Any]) -> str:
    """The canary's decision in one sentence."""
    state = c.get("state") or "unknown"
    if state == "running":
        share = f" at {100 * c['share']:.0f}% of records" if c.get("share") is not None else ""
        return (f"canary {c['model']}: still running{share}, {c.get('judged') or 0} canary answer(s) judged; "
                "nothing decided yet")
    if state not in ("rolled_back", "promoted"):
        return f"canary {c['model']}: its decision is not known (no checkpoint beside the results)"
    n = c.get("records_at_change", c.get("records"))
    after = f" after {n} canary answer(s)" if n is not None else ""
    before = c.get("records_before_change")
    if before is not None:
        after += f" ({before} record(s) of the job written by then)"
    why = f" on {c['threshold']}" if c.get("threshold") and c["threshold"] not in ("ramp", "refused") else ""
    return (f"canary {c['model']} {state.replace('_', ' ')}{when(c.get('changed_at', c.get('at')))}{after}{why}: "
            f"{c.get('reason') or 'no reason recorded'}")


def fmt_pct(v: float | None) -> str:
    """A share as a percentage, "-" when unknown."""
    return "-" if v is None else f"{100.0 * v:.1f}%"


def fmt_ms(v: float | None) -> str:
    """Milliseconds, "-" when unknown."""
    return "-" if v is None else f"{v:.0f}"


def fmt_usd(v: float | None) -> str:
    """Dollars, "unknown" when unknown (never a made-up $0)."""
    return "unknown" if v is None else f"${v:.6f}"
