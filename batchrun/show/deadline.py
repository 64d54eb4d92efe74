"""The deadline plan as lines for a person (`estimate --deadline`)."""

from __future__ import annotations

from typing import Any

from batchrun.route.when import iso_utc


def _range(r: list[float] | None) -> str:
    return "unknown" if r is None else f"${r[0]:.6f} to ${r[1]:.6f}"


def format_deadline(d: dict[str, Any]) -> list[str]:
    """The plan, its expected cost against both alternatives, and what it assumed."""
    out = [f"deadline {d['deadline']} (--deadline {d['given']}; aiming {d['margin_s']:.0f} s early)"]
    if d["impossible"]:
        out.append(d["says"])
    else:
        out.append(f"plan: {d['says']}, by {d['expected_finish']}")
    plan_cost = (None if d["cost_max_usd"] is None else [d["cost_min_usd"], d["cost_max_usd"]])
    out.append(f"plan cost: {_range(plan_cost)}; all live: {_range(d['all_live_cost_usd'])}; all through the "
               f"Batch API: {_range(d['all_batch_cost_usd'])}"
               + (f", finishing by {d['all_batch_finish']}" if d["all_batch_finish"] else ""))
    if d["planned_on"] == "time only":
        out.append("planned on time only: a price is unknown, or batches are no cheaper (add prices with --prices)")
    a = d["assumed"]
    out.append(f"assumed: live {a['live_rpm']:.0f} requests/min from {a['live_from']}; batches "
               f"{a['batch_lines_per_s']} lines/s after {a['batch_overhead_s']:.0f} s, from {a['batch_from']}")
    return out


def _money(v: float | None) -> str:
    return "unknown" if v is None else f"${v:.6f}"


def _clock(iso: str | None) -> str:
    return "?" if iso is None else iso[11:]


def progress_line(at: float, now: dict[str, Any]) -> str:
    """The progress line's lead: the deadline, the expected finish, and where the records are."""
    s = now["split"]
    return (f"deadline {_clock(iso_utc(at))}, expected {_clock(now['expected_finish'])}; answered {s['batch_done']} "
            f"in batches, {s['live_done']} live{_flex(s)}; left {s['in_batches']} in batches, {s['live']} live, "
            f"{s['waiting']} waiting")


def _flex(split: dict[str, Any]) -> str:
    return f" ({split['flex_done']} at flex)" if split.get("flex_done") else ""


def deadline_lines(d: dict[str, Any]) -> list[str]:
    """A --deadline job's end (summary) or state (status): what was decided, why, and what it cost."""
    out = [f"deadline {d['deadline']} (--deadline {d['given']}): {d['plan'] or 'no plan yet'}"]
    s = d.get("split") or {}
    invalid = f" ({s['invalid']} bad input line(s) sent nowhere)" if s.get("invalid") else ""
    moves = (f"{d['held_live']} shard(s) sent live instead of into a batch, {d['cancelled_batches']} slow "
             "batch(es) cancelled, their answered lines kept")
    if d.get("met") is not None:
        out.append(f"{'met' if d['met'] else 'missed'}: {d['batch']} record(s) answered through the Batch API, "
                   f"{d['live']} live{_flex(s)}{invalid}; {moves}")
    elif s:
        out.append(f"as of {d['as_of']}: answered {s['batch_done']} through the Batch API, {s['live_done']} live"
                   f"{_flex(s)}{invalid}; left {s['in_batches']} in batches, {s['live']} live, {s['waiting']} waiting; "
                   f"expected to finish {d.get('expected_finish') or 'when a path moves'}; {moves}")
    if d.get("why"):
        out.append(f"last decision: {d['why']}")
    if "cost_usd" in d:
        out.append(f"cost {_money(d['cost_usd'])}; the same answers all live {_money(d['all_live_usd'])}, all "
                   f"through the Batch API {_money(d['all_batch_usd'])}")
    return out
