"""A run drawn afterwards: result lines summed into time buckets, latency into log bins.

Pure and bounded: however long the results file, the buckets are at most MAX_BUCKETS (they
double in width as they fill), so a report of a million lines holds a few thousand numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from batchrun.records import INVALID_INPUT

MAX_BUCKETS = 4096
LATENCY_BINS = 61  # 10 a decade from 1 ms to 1,000 s
MAX_ERROR_CODES = 12
_FIRST_WIDTH = 1 / 64  # seconds; a run of a second still gets a curve


@dataclass(frozen=True, slots=True)
class Series:
    """The timeline on an even grid, ready to draw: one value a bucket."""

    start: float  # epoch seconds of the first bucket's start
    width: float  # seconds a bucket
    ok: list[float]  # completions a second
    failed: list[float]  # failed records a second
    rate_limited: list[float]  # 429s a second (each counted at the record it delayed, when it finished)
    cumulative_cost: dict[str, list[float]]  # USD, by model


class RunTimeline:
    """What happened when, by model: fed one result line at a time."""

    def __init__(self, max_buckets: int = MAX_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self.width = _FIRST_WIDTH
        self.counts: dict[int, list[int]] = {}  # bucket -> [ok, failed, 429s]
        self.costs: dict[str, dict[int, float]] = {}
        self.latency: dict[str, list[int]] = {}
        self.errors: Counter[str] = Counter()
        self.untimed = 0  # lines with no time of their own: not on the time charts
        self.first: float | None = None
        self.last: float | None = None

    def add(self, at: float | None, model: str | None, ok: bool, rate_limited: int, cost: float | None,
            latency_ms: float, error_code: str | None) -> None:
        """One result line: `at` is when it was written (epoch seconds; None: not on the timeline)."""
        if error_code is not None:
            code = error_code if error_code in self.errors or len(self.errors) < MAX_ERROR_CODES else "other"
            self.errors[code] += 1
        if model is not None and latency_ms > 0:
            bins = self.latency.setdefault(model, [0] * LATENCY_BINS)
            bins[min(LATENCY_BINS - 1, max(0, round(10 * math.log10(max(latency_ms, 1.0)))))] += 1
        if error_code == INVALID_INPUT:  # written at once, never sent: not part of the run's pace
            return
        if at is None or not math.isfinite(at):
            self.untimed += 1
            return
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        k = math.floor(at / self.width)
        c = self.counts.get(k)
        if c is None:
            c = self.counts[k] = [0, 0, 0]
        c[0 if ok else 1] += 1
        c[2] += rate_limited
        if cost and model is not None:
            per = self.costs.setdefault(model, {})
            per[k] = per.get(k, 0.0) + cost
        if len(self.counts) > self.max_buckets:
            self._coarsen()

    def _coarsen(self) -> None:
        """Double the bucket width, merging pairs: memory stays bounded whatever the run's length."""
        self.width *= 2
        merged: dict[int, list[int]] = {}
        for k, c in self.counts.items():
            m = merged.setdefault(k // 2, [0, 0, 0])
            for i in range(3):
                m[i] += c[i]
        self.counts = merged
        for model, per in self.costs.items():
            out: dict[int, float] = {}
            for k, v in per.items():
                out[k // 2] = out.get(k // 2, 0.0) + v
            self.costs[model] = out

    def series(self, points: int | None = None) -> Series | None:
        """The timeline in at most `points` even buckets (default: about 8 lines a bucket, from 30
        to 240 buckets, so a short run is not drawn as noise); None when no line had a time."""
        if not self.counts:
            return None
        if points is None:
            points = min(240, max(30, sum(c[0] + c[1] for c in self.counts.values()) // 8))
        lo, hi = min(self.counts), max(self.counts)
        factor = 1
        while (hi // factor - lo // factor + 1) > points:
            factor *= 2
        base, n = lo // factor, hi // factor - lo // factor + 1
        width = self.width * factor
        ok, failed, limited = [0.0] * n, [0.0] * n, [0.0] * n
        for k, (o, f, r) in self.counts.items():
            i = k // factor - base
            ok[i] += o
            failed[i] += f
            limited[i] += r
        cumulative = {}
        for model, per in sorted(self.costs.items()):
            dense = [0.0] * n
            for k, v in per.items():
                dense[k // factor - base] += v
            cumulative[model] = list(_running_sum(dense))
        # The first and last buckets are only partly inside the run: their rates are over the
        # part covered (a rate over the whole width would draw a false drop at each end), and a
        # sliver of a bucket is folded into its neighbour rather than drawn as a spike.
        assert self.first is not None and self.last is not None
        seconds = [width] * n
        seconds[0] = (base + 1) * width - self.first
        seconds[-1] = min(seconds[-1], self.last - (base + n - 1) * width) if n > 1 else self.last - self.first
        start = base * width
        columns = [ok, failed, limited, seconds]
        if n > 1 and seconds[-1] < width / 4:
            for col in columns:
                last = col.pop()
                col[-1] += last
            for line in cumulative.values():
                del line[-2]  # the last running total stands
        if len(seconds) > 1 and seconds[0] < width / 4:
            for col in columns:
                col[1] += col.pop(0)
            for line in cumulative.values():
                line.pop(0)
            start += width
        for i, sec in enumerate(seconds):
            sec = max(sec, width / 4)  # a run of one instant
            ok[i], failed[i], limited[i] = ok[i] / sec, failed[i] / sec, limited[i] / sec
        return Series(start, width, ok, failed, limited, cumulative)


def _running_sum(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


_FINISHED = b'"finished_at":'


def finished_at(raw: bytes) -> float | None:
    """A result line's `batchrun.finished_at`, read off the raw line: the batchrun object is
    written last, so its key is the line's last occurrence; None if absent or not a number."""
    i = raw.rfind(_FINISHED)
    if i < 0:
        return None
    j = i + len(_FINISHED)
    end = j
    while end < len(raw) and raw[end] in b" 0123456789.eE+-":
        end += 1
    try:
        return float(raw[j:end])
    except ValueError:
        return None
