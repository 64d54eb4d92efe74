"""Charts as inline SVG, drawn here rather than by a JavaScript library: the report then loads
nothing, runs no script, prints and opens anywhere, and four simple charts cost a few kilobytes
instead of a 200 kB bundle to vendor and keep current."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

W, H = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 16, 46
# Okabe-Ito: told apart by people with any common colour blindness
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

Fmt = Callable[[float], str]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not hi > lo:
        hi = lo + 1
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= step * m)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def time_ticks(span: float, count: int = 6) -> list[float]:
    """Tick offsets in seconds on steps a clock reads well (5 s, 1 min, 15 min, 1 h...)."""
    steps = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
             21600, 43200, 86400, 172800, 604800)
    step = next((s for s in steps if span / s <= count), steps[-1] * math.ceil(span / steps[-1] / count))
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


def duration(s: float) -> str:
    """An offset from the run's start, as a tick label."""
    if s < 10 and s != int(s):
        return f"{s:.1f}s"
    s = round(s)
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60:02d}s" if s % 60 else "")
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def number(v: float) -> str:
    """A tick label: short, no needless decimals."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:.4g}"


def money(v: float) -> str:
    """A USD tick label."""
    return "$0" if v == 0 else f"${v:.2g}" if v < 0.01 else f"${v:,.2f}"


def _svg(label: str, body: list[str], legend: Sequence[str] = (), height: int = H) -> str:
    keys = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(name)}</span>'
        for i, name in enumerate(legend))
    return (f'<svg class="plot" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(label)}">'
            + "".join(body) + "</svg>" + (f'<div class="legend">{keys}</div>' if keys else ""))


def _axes(xt: list[tuple[float, str]], yt: list[tuple[float, str]], x_label: str, y_label: str) -> list[str]:
    out = []
    for y, text in yt:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>')
    for x, text in xt:
        out.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{H - BOTTOM}" y2="{H - BOTTOM + 5}"/>'
                   f'<text class="tick" x="{x:.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{escape(text)}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}"/>'
               f'<text class="label" x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">'
               f'{escape(x_label)}</text>'
               f'<text class="label" transform="translate(14 {(TOP + H - BOTTOM) / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    return out


def line_chart(label: str, xs: Sequence[float], series: Sequence[tuple[str, Sequence[float]]],
               x_label: str, y_label: str, x_fmt: Fmt = number, y_fmt: Fmt = number,
               log_x: bool = False, x_ticks: Sequence[float] | None = None, step: bool = False,
               marks: Sequence[tuple[float, str]] = ()) -> str:
    """Lines over a shared x; `step` draws each value flat across its bucket; `marks` are events
    (x, label) drawn as labelled vertical lines."""
    if not xs or not series:
        return empty_chart(label, "nothing to draw")
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    x0, x1 = fx(xs[0]), fx(xs[-1])
    if step and len(xs) > 1:
        x1 += fx(xs[-1]) - fx(xs[-2])
    x1 = x1 if x1 > x0 else x0 + 1
    top = max((max(v) for _, v in series if v), default=0.0) or 1.0
    yt = nice_ticks(0, top)
    top = max(yt[-1], top)

    def px(v: float) -> float:
        return LEFT + (fx(v) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(v: float) -> float:
        return H - BOTTOM - v / top * (H - TOP - BOTTOM)

    ticks = x_ticks if x_ticks is not None else nice_ticks(xs[0], xs[-1])
    body = _axes([(px(t), x_fmt(t)) for t in ticks if x0 - 1e-9 <= fx(t) <= x1 + 1e-9],
                 [(py(t), y_fmt(t)) for t in yt], x_label, y_label)
    width = (xs[1] - xs[0]) if step and len(xs) > 1 else 0.0
    for i, (at, text) in enumerate(marks):  # an event a moment outside the buckets is drawn at their edge
        x = min(max(at, xs[0]), xs[-1] + width)
        if abs(at - x) <= max(1.0, width):
            body.append(f'<line class="mark" x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{H - BOTTOM}"/>'
                        f'<text class="mark-label" x="{px(x) + 3:.1f}" y="{TOP + 10 + 12 * (i % 3)}">'
                        f"{escape(text)}</text>")
    for i, (name, values) in enumerate(series):
        pts = []
        for x, v in zip(xs, values, strict=False):
            pts.append(f"{px(x):.1f},{py(v):.1f}")
            if step:
                pts.append(f"{px(x + width):.1f},{py(v):.1f}")
        body.append(f'<polyline class="series" fill="none" stroke="{PALETTE[i % len(PALETTE)]}" '
                    f'points="{" ".join(pts)}"><title>{escape(name)}</title></polyline>')
    return _svg(label, body, [name for name, _ in series])


def bar_chart(label: str, items: Sequence[tuple[str, int]], x_label: str) -> str:
    """Horizontal bars, largest first; as tall as its bars need."""
    if not items:
        return empty_chart(label, "no errors")
    items = sorted(items, key=lambda kv: -kv[1])
    row = 28
    height = TOP + BOTTOM + row * len(items)
    xt = nice_ticks(0, max(v for _, v in items) or 1)
    top = max(xt[-1], max(v for _, v in items))
    left = min(300, max(LEFT, 8 + 7 * max(len(k) for k, _ in items)))

    def px(v: float) -> float:
        return left + v / top * (W - left - RIGHT)

    body = [f'<line class="grid" x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{TOP}" y2="{height - BOTTOM}"/>'
            f'<text class="tick" x="{px(t):.1f}" y="{height - BOTTOM + 18}" text-anchor="middle">{number(t)}</text>'
            for t in xt]
    for i, (name, v) in enumerate(items):
        y = TOP + i * row
        body.append(f'<rect x="{left}" y="{y + 4}" width="{px(v) - left:.1f}" height="{row - 8}" '
                    f'fill="{PALETTE[3]}"><title>{escape(name)}: {v}</title></rect>'
                    f'<text class="tick" x="{left - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end">'
                    f'{escape(name)}</text>'
                    f'<text class="tick" x="{px(v) + 4:.1f}" y="{y + row / 2 + 4:.1f}">{v}</text>')
    body.append(f'<text class="label" x="{(left + W - RIGHT) / 2}" y="{height - 6}" text-anchor="middle">'
                f'{escape(x_label)}</text>')
    return _svg(label, body, height=height)


def empty_chart(label: str, message: str) -> str:
    """A chart with nothing to show says so, in its place."""
    return _svg(label, [f'<text class="empty" x="{W / 2}" y="50" text-anchor="middle">{escape(message)}</text>'],
                height=90)
