"""Routing figures for people: baseline and canary side by side, providers, the shadow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:.1f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _usd(v: float | None) -> str:
    return "unknown" if v is None else f"${v:.6f}"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime(" at %Y-%m-%d %H:%M:%S UTC")


def canary_line(c: dict[str, Any]) -> str:
    """One short line for the live display and `status`: the state first, then both arms."""
    b, k = c["baseline"], c["canary"]
    state = c["state"].replace("_", " ")
    when = _when(c.get("changed_at", c.get("at"))) if c["state"] != "running" else ""
    return (f"canary {state}{when} ({100 * c['share']:.0f}%): {k['succeeded']}/{k['records']} ok, p95 "
            f"{_ms(k['p95_ms'])} ms; baseline {b['succeeded']}/{b['records']} ok, p95 {_ms(b['p95_ms'])} ms")


def canary_status(c: dict[str, Any]) -> list[str]:
    """`status`'s canary lines: the short line, and why it is where it is."""
    return [canary_line(c), *([f"canary reason: {c['reason']}"] if c.get("reason") else [])]


def format_canary(c: dict[str, Any]) -> Table:
    """The end-of-run canary table: a row per figure, so it reads at 80 columns."""
    t = Table(title=f"canary {c['model']}: {c['state']}", title_justify="left")
    t.add_column("figure")
    t.add_column("baseline", justify="right")
    t.add_column("canary", justify="right")
    b, k = c["baseline"], c["canary"]
    rows = [
        ("records", str(b["records"]), str(k["records"])),
        ("success rate", _pct(b["success_rate"]), _pct(k["success_rate"])),
        ("error rate", _pct(b["error_rate"]), _pct(k["error_rate"])),
        ("p50 ms", _ms(b["p50_ms"]), _ms(k["p50_ms"])),
        ("p95 ms", _ms(b["p95_ms"]), _ms(k["p95_ms"])),
        ("cost / 1,000 records", _usd(b["cost_per_1k_usd"]), _usd(k["cost_per_1k_usd"])),
        ("share", "", _pct(c["share"])),
    ]
    for row in rows:
        t.add_row(*row)
    if c.get("reason"):
        t.caption = f"{c['state'].replace('_', ' ')}{_when(c.get('changed_at'))}: {c['reason']}"
        t.caption_justify = "left"
    return t


def format_routing(summary: dict[str, Any]) -> list[Any]:
    """Whatever of providers, canary and shadow the summary holds."""
    out: list[Any] = []
    providers = summary.get("providers")
    if providers:
        t = Table(title="providers", title_justify="left")
        for col in ("provider", "requests", "ok", "failed", "429s", "cost"):
            t.add_column(col, justify="left" if col == "provider" else "right", no_wrap=True)
        for name, p in providers.items():
            t.add_row(name, str(p["requests"]), str(p["succeeded"]), str(p["failed"]),
                      str(p["rate_limited"]), _usd(p["cost_usd"]))
        out.append(t)
    if summary.get("canary"):
        out.append(format_canary(summary["canary"]))
    s = summary.get("shadow")
    if s:
        out.append(f"shadow {s['model']}: {s['compared']} compared, agreement {_pct(s['agreement'])}, "
                   f"cost {_usd(s['cost_usd'])} (counted against --max-cost; "
                   f"answers in the .shadow.jsonl file)")
    return out


def format_providers_health(rows: list[dict[str, Any]]) -> Table:
    """`batchrun providers`: a row per provider, its problem spelled out."""
    t = Table(title="providers", title_justify="left")
    for col in ("provider", "reachable", "key", "latency ms", "models", "healthy"):
        t.add_column(col, justify="right" if col in ("latency ms", "models") else "left")
    for r in rows:
        key = {True: "accepted", False: "refused", None: "-"}[r["key_accepted"]]
        t.add_row(r["provider"], "yes" if r["reachable"] else "no", key, _ms(r["latency_ms"]),
                  "-" if r["models"] is None else str(r["models"]),
                  "yes" if r["healthy"] else f"no: {r['problem']}")
    return t
