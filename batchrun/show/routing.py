"""Routing figures for people: baseline and canary side by side, providers, the shadow."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from batchrun.results.decision import canary_decision, per_1k, thresholds_words, when
from batchrun.results.decision import fmt_ms as _ms
from batchrun.results.decision import fmt_pct as _pct
from batchrun.results.decision import fmt_usd as _usd


def canary_line(c: dict[str, Any]) -> str:
    """One short line for the live display and `status`: the state first, then both arms."""
    b, k = c["baseline"], c["canary"]
    state = c["state"].replace("_", " ")
    at = when(c.get("changed_at", c.get("at"))) if c["state"] != "running" else ""
    return (f"canary {state}{at} ({100 * c['share']:.0f}%): {k['succeeded']}/{k['records']} ok, p95 "
            f"{_ms(k['p95_ms'])} ms; baseline {b['succeeded']}/{b['records']} ok, p95 {_ms(b['p95_ms'])} ms")


def canary_status(c: dict[str, Any]) -> list[str]:
    """`status`'s canary lines: the short line, and the decision in words."""
    return [canary_line(c), canary_decision(c)]


def format_canary(c: dict[str, Any]) -> Table:
    """The end-of-run canary table: a row per figure, so it reads at 80 columns."""
    t = Table(title=f"canary {c['model']}: {c['state']}", title_justify="left")
    t.add_column("figure")
    t.add_column("baseline", justify="right")
    t.add_column("canary", justify="right")
    b, k = c["baseline"], c["canary"]
    rows = [
        ("records", str(b["records"]), str(k["records"])),
        ("answered", str(b.get("answered", b["succeeded"])), str(k.get("answered", k["succeeded"]))),
        ("success rate", _pct(b["success_rate"]), _pct(k["success_rate"])),
        ("error rate", _pct(b["error_rate"]), _pct(k["error_rate"])),
        ("p50 ms", _ms(b["p50_ms"]), _ms(k["p50_ms"])),
        ("p95 ms", _ms(b["p95_ms"]), _ms(k["p95_ms"])),
        ("cost / 1,000 answered", per_1k(b), per_1k(k)),
        ("share", "", _pct(c["share"])),
    ]
    for row in rows:
        t.add_row(*row)
    judged = thresholds_words(c.get("thresholds"))
    t.caption = canary_decision(c) + (f"; judged on {judged}" if judged else "")
    t.caption_justify = "left"
    return t


def format_routing(summary: dict[str, Any]) -> list[Any]:
    """Whatever of providers, canary and shadow the summary holds."""
    out: list[Any] = []
    providers = summary.get("providers")
    if providers:
        t = Table(title="providers", title_justify="left", caption_justify="left",
                  caption="requests = answered + failed + 429s: every request sent, canary, shadow and retries")
        for col in ("provider", "requests", "answered", "failed", "429s", "cost"):
            t.add_column(col, justify="left" if col == "provider" else "right", no_wrap=True)
        for name, p in providers.items():
            t.add_row(name, str(p["requests"]), str(p["succeeded"]), str(p["failed"]),
                      str(p["rate_limited"]), _usd(p["cost_usd"]))
        out.append(t)
    if summary.get("canary"):
        out.append(format_canary(summary["canary"]))
    s = summary.get("shadow")
    if s:
        out.append(f"shadow {s['model']}: {s['compared']} compared, {s.get('agreed', 0)} agreed "
                   f"({_pct(s['agreement'])}), cost {_usd(s['cost_usd'])} (in the total and against "
                   f"--max-cost; answers in the .shadow.jsonl file)")
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
