"""The report's migration and findings sections as HTML: the canary beside its baseline and what
was decided, the shadow's agreement and records where the answers differ, every provider's
figures; each answer field's commonest values. Every value from a file is escaped."""

from __future__ import annotations

from html import escape
from typing import Any

from batchrun.results.decision import canary_decision, per_1k, thresholds_words, when
from batchrun.results.decision import fmt_ms as _ms
from batchrun.results.decision import fmt_pct as _pct
from batchrun.results.decision import fmt_usd as _usd


def table(head: tuple[str, ...], rows: list[tuple[Any, ...]], ident: str = "") -> str:
    """A plain table, every cell escaped."""
    attr = f' id="{ident}"' if ident else ""
    return (f'<div class="scroll"><table{attr}><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            + "</tbody></table></div>")


def _canary(c: dict[str, Any]) -> str:
    b, k = c["baseline"], c["canary"]
    rows = [
        ("records", b["records"], k["records"]), ("answered", b["answered"], k["answered"]),
        ("error rate", _pct(b["error_rate"]), _pct(k["error_rate"])),
        ("p50 ms", _ms(b["p50_ms"]), _ms(k["p50_ms"])), ("p95 ms", _ms(b["p95_ms"]), _ms(k["p95_ms"])),
        ("cost / 1,000 answered", per_1k(b), per_1k(k)),
    ]
    judged = thresholds_words(c.get("thresholds"))
    steps = "".join(f"<li>{escape(when(at).strip() or '?')}: "
                    f"{'rolled back' if share == 0 else f'share {100 * share:.0f}%'}</li>"
                    for at, share in c.get("steps") or ())
    first = (f"<li>from the start: share {100 * c['first_share']:.0f}%</li>"
             if isinstance(c.get("first_share"), int | float) else "")
    return (f'<h3>Canary {escape(str(c["model"]))} against its baseline</h3>'
            f'<p class="decision" id="canary-decision">{escape(canary_decision(c))}</p>'
            + table(("figure", "baseline", f"canary {c['model']}"), rows, "canary-arms")
            + (f'<p class="note">judged on {escape(judged)}</p>' if judged else "")
            + (f'<p class="note">share steps:</p><ul class="steps">{first}{steps}</ul>' if steps else ""))


def _shadow(s: dict[str, Any]) -> str:
    head = (f'<h3>Shadow {escape(str(s["model"]))}</h3><p id="shadow-agreement">agreement with the main answers: '
            f'{s["agreed"]} of {s["compared"]} compared agreed ({_pct(s["agreement"])}); {s["answered"]} shadow '
            f'record(s), {s["failed"]} failed; cost {escape(_usd(s["cost_usd"]))}</p>')
    if not s["differ"]:
        return head
    rows = [(d["key"], d["main"] if d["main"] is not None else "-", d["shadow"] if d["shadow"] is not None else "-")
            for d in s["differ"]]
    return (head + '<p class="note">records where the answers differ (a few, cut short):</p>'
            + table(("record", "main answer", "shadow answer"), rows, "shadow-differ"))


def _providers(providers: dict[str, dict[str, Any]]) -> str:
    rows = [(name, p["requests"], p["succeeded"], p["failed"], p["rate_limited"], _usd(p["cost_usd"]),
             *(_usd(p["cost_split_usd"][k]) for k in ("main", "canary", "shadow")))
            for name, p in providers.items()]
    return ("<h3>Providers</h3>"
            + table(("provider", "requests", "answered", "failed", "429s", "cost", "main", "canary", "shadow"),
                    rows, "providers")
            + '<p class="note">requests = answered + failed + 429s: every request sent, retries, the canary\'s '
              "and the shadow's included</p>")


def migration_section(data: dict[str, Any]) -> str:
    """The migration: '' for a run with neither a canary nor a shadow."""
    m = data.get("migration")
    if not m:
        return ""
    parts = ['<section id="migration"><h2>Migration</h2>']
    if m.get("canary"):
        parts.append(_canary(m["canary"]))
    if m.get("shadow"):
        parts.append(_shadow(m["shadow"]))
    if m.get("providers"):
        parts.append(_providers(m["providers"]))
    return "".join(parts) + "</section>"


def findings_section(data: dict[str, Any]) -> str:
    """What the answers found, where they are JSON objects: '' otherwise."""
    f = data.get("findings") or {}
    if not f.get("fields"):
        return ""
    rows = [(name, ", ".join(f"{v} ({n:,})" for v, n in values)) for name, values in f["fields"].items()]
    out = (f'<section id="findings"><h2>What the answers say</h2><p class="note">{f["answers"]:,} answer(s) are '
           "JSON objects; each field's most frequent values and how many answers gave them</p>"
           + table(("field", "most frequent values"), rows, "field-values"))
    differs = f.get("shadow_differs") or {}
    if differs:
        pairs: list[tuple[Any, ...]] = [(name, d["compared"], d["differ"],
                 "; ".join(f"{a} → {b} ({n})" for a, b, n in d["pairs"]) or "-") for name, d in differs.items()]
        out += ('<p class="note">where the shadow model\'s values differ from the main answers:</p>'
                + table(("field", "compared", "differ", "main → shadow"), pairs, "field-differs"))
    return out + "</section>"
