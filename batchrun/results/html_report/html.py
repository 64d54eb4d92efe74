"""The run report as one self-contained HTML page: the summary table and inline SVG charts.
Nothing is loaded at view time (no script, font, style sheet or image from anywhere)."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from batchrun.results.html_report.charts import bar_chart, duration, line_chart, money, number, time_ticks
from batchrun.results.html_report.migration_html import findings_section, migration_section
from batchrun.results.timeline import LATENCY_BINS, RunTimeline

MAX_CHART_MODELS = 8

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}
.sub{color:#57606a;margin:0 0 16px;word-break:break-all}
.figures{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 20px}
.figure{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:8px 14px}
.figure b{display:block;font-size:20px}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:14px 16px;margin:0 0 18px}
table{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th{font-weight:600;vertical-align:bottom;white-space:normal}
th:first-child,td:first-child{text-align:left}
.scroll{overflow-x:auto}
svg.plot{width:100%;height:auto;display:block}
.grid{stroke:#eaeef2}.axis{stroke:#8c959f}.series{stroke-width:2;stroke-linejoin:round}
.tick{font-size:11px;fill:#57606a}.label{font-size:12px;fill:#1b1f24}.empty{font-size:15px;fill:#57606a}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;margin-top:4px}
.key i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.note{color:#57606a;font-size:12px;margin:6px 0 0}
h3{font-size:14px;margin:14px 0 6px}.decision{font-weight:600;margin:4px 0 8px}
#migration td,#findings td{white-space:normal}
#shadow-differ :is(td,th),#field-values :is(td,th),#field-differs :is(td,th):last-child{text-align:left}
.steps{margin:4px 0;padding-left:20px;font-size:12.5px}
.mark{stroke:#8250df;stroke-dasharray:4 3}.mark-label{font-size:11px;fill:#8250df}
.simulated{background:#8250df;color:#fff;font-weight:700;border-radius:6px;padding:10px 14px;margin:0 0 16px}
"""


def _money(v: float | None) -> str:
    return "unknown" if v is None else f"${v:.6f}"


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _chart(ident: str, title: str, svg: str, note: str = "") -> str:
    return (f'<section class="chart" id="{ident}"><h2>{escape(title)}</h2>{svg}'
            + (f'<p class="note">{escape(note)}</p>' if note else "") + "</section>")


def summary_table(data: dict[str, Any]) -> str:
    """The per-model summary, as the terminal table shows it."""
    head = ("model", "requests", "ok", "failed", "err %", "attempts", "429s", "fallbacks", "input tok",
            "output tok", "cached", "cost", "p50 ms", "p95 ms")
    rows = []
    for name, m in data["models"].items():
        lat = m.get("latency_ms") or {}
        cells = (name, m["requests"], m["succeeded"], m["failed"], f"{100 * m.get('error_rate', 0):.1f}",
                 m["attempts"], m["rate_limited"], m["fallbacks"], f"{m['input_tokens']:,}",
                 f"{m['output_tokens']:,}", f"{m['cached_tokens']:,}", _money(m["cost_usd"]),
                 "-" if lat.get("p50") is None else f"{lat['p50']:.0f}",
                 "-" if lat.get("p95") is None else f"{lat['p95']:.0f}")
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return ('<section id="summary"><h2>Per model</h2><div class="scroll"><table><thead><tr>'
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></div></section>")


def _figures(data: dict[str, Any], tl: RunTimeline) -> str:
    r = data["records"]
    cost = f"${data['total_cost_usd']:.6f}"
    split = data.get("cost_split_usd") or {}
    if data.get("migration"):
        cost += (f" = ${split.get('main', 0.0):.6f} main + ${split.get('canary', 0.0):.6f} canary + "
                 f"${split.get('shadow', 0.0):.6f} shadow")
    if data["unpriced_models"]:
        cost += " + unknown"
    items = [("records", f"{r['total']:,}"), ("succeeded", f"{r['succeeded']:,}"), ("failed", f"{r['failed']:,}"),
             ("invalid", f"{r['invalid']:,}"), ("total cost", cost)]
    if tl.first is not None and tl.last is not None:
        items.append(("first to last line", duration(tl.last - tl.first)))
    return '<div class="figures">' + "".join(
        f'<div class="figure">{escape(k)}<b>{escape(v)}</b></div>' for k, v in items) + "</div>"


def _marks(data: dict[str, Any], start: float) -> list[tuple[float, str]]:
    """The canary's share steps, as offsets from the chart's start."""
    c = (data.get("migration") or {}).get("canary") or {}
    return [(at - start, "rolled back" if share == 0 else f"canary {100 * share:.0f}%")
            for at, share in c.get("steps") or () if isinstance(at, int | float)]


def _throughput(tl: RunTimeline, data: dict[str, Any]) -> str:
    s = tl.series()
    if s is None:
        return _chart("chart-throughput", "Completions and 429s per second", line_chart("empty", [], [], "", ""))
    xs = [i * s.width for i in range(len(s.ok))]
    span = len(s.ok) * s.width
    svg = line_chart("completions, failures and 429s per second over time", xs,
                     [("completions", s.ok), ("failed", s.failed), ("429s", s.rate_limited)],
                     f"time since {_utc(s.start)}", "per second", x_fmt=duration,
                     x_ticks=time_ticks(span), step=True, marks=_marks(data, s.start))
    return _chart("chart-throughput", "Completions and 429s per second", svg,
                  f"{len(xs)} buckets of {duration(s.width) if s.width >= 0.1 else f'{s.width * 1000:.0f} ms'}; "
                  "a 429 is counted when the record it delayed was written")


def _latency(data: dict[str, Any], tl: RunTimeline, models: list[str]) -> str:
    used = [i for m in models for i, c in enumerate(tl.latency.get(m, ())) if c]
    if not used:
        return _chart("chart-latency", "Latency distribution per model", line_chart("empty", [], [], "", ""))
    lo, hi = max(0, min(used) - 1), min(LATENCY_BINS - 1, max(used) + 1)
    xs = [10 ** (i / 10) for i in range(lo, hi + 1)]
    series = []
    for m in models:
        bins = tl.latency.get(m)
        if not bins:
            continue
        total = sum(bins)
        lat = data["models"].get(m, {}).get("latency_ms") or {}
        name = m + (f" (p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms)" if lat.get("p50") is not None
                    and lat.get("p95") is not None else "")
        series.append((name, [100 * bins[i] / total for i in range(lo, hi + 1)]))
    # 1-2-5 a decade; within one decade or so, 1-1.5-2-3-5-7 so the axis still reads
    steps = (1, 2, 5) if xs[-1] / xs[0] > 30 else (1, 1.5, 2, 3, 5, 7)
    ticks = [m * 10**e for e in range(6) for m in steps if xs[0] <= m * 10**e <= xs[-1]]
    svg = line_chart("share of each model's requests by latency", xs, series, "latency (ms, log scale)",
                     "% of the model's requests", x_fmt=number, y_fmt=lambda v: f"{v:g}%", log_x=True,
                     x_ticks=ticks)
    return _chart("chart-latency", "Latency distribution per model", svg,
                  "latency of each record's last attempt, in bins of a tenth of a decade")


def _cost(data: dict[str, Any], tl: RunTimeline, models: list[str]) -> str:
    s = tl.series()
    title = "Cumulative cost per model"
    series = [(m, s.cumulative_cost[m]) for m in models if s is not None and m in s.cumulative_cost]
    if s is None or not series:
        return _chart("chart-cost", title, line_chart("empty", [], [], "", ""), "no priced answers")
    xs = [(i + 1) * s.width for i in range(len(s.ok))]
    svg = line_chart("cumulative cost per model over time", xs, series, f"time since {_utc(s.start)}", "USD",
                     x_fmt=duration, y_fmt=money, x_ticks=time_ticks(xs[-1]))
    unpriced = data["unpriced_models"]
    return _chart("chart-cost", title, svg, f"no price known for {', '.join(unpriced)}" if unpriced else "")


def render_report(data: dict[str, Any], tl: RunTimeline, source: str) -> str:
    """The whole page for a report's data (run.report) and the timeline read with it."""
    by_use = sorted(data["models"], key=lambda m: -data["models"][m]["requests"])
    models = by_use[:MAX_CHART_MODELS]
    more = len(by_use) - len(models)
    errors = bar_chart("records by error code", sorted(tl.errors.items()), "records")
    simulated = bool(data.get("job", {}).get("simulated"))
    parts = [
        ('<p class="simulated" id="simulated">SIMULATED run: no real API was called; these figures come '
         "from the batchrun simulator</p>" if simulated else ""),
        f"<h1>batchrun run report{' [SIMULATED]' if simulated else ''}</h1><p class=\"sub\">{escape(source)}"
        + (f" &middot; {escape(_utc(tl.first))} to {escape(_utc(tl.last))}" if tl.first and tl.last else "")
        + "</p>",
        _figures(data, tl),
        summary_table(data),
        migration_section(data),
        findings_section(data),
        _throughput(tl, data),
        _latency(data, tl, models),
        _cost(data, tl, models),
        _chart("chart-errors", "Errors by code", errors),
    ]
    if more:
        parts.append(f'<p class="note">charts show the {len(models)} busiest models; {more} more are in the table</p>')
    if tl.untimed:
        parts.append(f'<p class="note">{tl.untimed} line(s) carry no time and are left out of the time charts</p>')
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>batchrun report{' [SIMULATED]' if simulated else ''}: {escape(source)}</title>"
            f"<style>{_CSS}</style></head><body><main>"
            + "".join(parts) + "</main></body></html>\n")
