"""`batchrun report`: the per-model summary of any results file, and what its usage would cost
on other models, each line priced at the time its request was sent."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import JobStats, summary
from batchrun.config import SIMULATED_BASE_URL
from batchrun.errors import ConfigError, InputError, reading
from batchrun.results.html_report.html import render_report
from batchrun.results.migration import MigrationReader
from batchrun.results.target import check_target, replacing
from batchrun.results.timeline import RunTimeline, finished_at
from batchrun.store.files import job_files, refuse_job_file
from batchrun.store.state import checkpoint_path
from batchrun.store.wire import ResultLine, read_result_lines


def report(
    paths: Path | Sequence[Path], prices: PriceBook, compare: list[str], timeline: RunTimeline | None = None
) -> dict[str, Any]:
    """The summary JSON of a results file (or of several: a job's parts, as one), plus `compare`:
    its usage priced on other models; `timeline`, if given, is fed every result line on the same
    reading."""
    files = [paths] if isinstance(paths, Path) else list(paths)
    path = files[0] if len(files) == 1 else Path(", ".join(map(str, files)))
    stats = JobStats()
    migration = MigrationReader(path)
    foreign = results = 0
    costs: dict[str, float | None] = dict.fromkeys(compare, 0.0)
    for line in _lines(files):
        r = line.result
        if r is None:
            foreign += bool(line.raw.strip())
            continue
        results += 1
        stats.add(r)
        at = finished_at(line.raw)
        migration.add(line.raw, r, at)
        if timeline is not None:
            timeline.add(at, r.model, r.ok, r.rate_limited, r.cost_usd, r.latency_ms, r.error_code)
        for name, so_far in costs.items():
            if so_far is not None and (r.usage.input_tokens or r.usage.output_tokens):
                c = prices.cost(name, r.usage, r.started_at)
                costs[name] = None if c is None else so_far + c
    if not results:  # an empty table, exit 0, would pass for a job that did nothing
        if foreign:
            raise InputError(f"{path} is not a batchrun results file: none of its {foreign} lines is a result line")
        raise InputError(f"{path} holds no result lines to report")
    out = summary(stats, input_path="", output_path=str(path), total=stats.done, complete=True,
                  simulated=any(ran_simulated(p) for p in files), runs=0, elapsed_s=0.0, stopped=None)
    out["foreign_lines"] = foreign
    out.update(migration.data(stats))
    if migration.shadow is not None:  # everything billed: the shadow's answers too
        migration.shadow.add_cost(out)
    tokens = {f: sum(getattr(m, f) for m in stats.models.values())
              for f in ("input_tokens", "output_tokens", "cached_tokens")}
    out["compare"] = {
        name: {**prices.describe(name), "cost_usd": None if c is None else round(c, 8), **tokens}
        for name, c in costs.items()
    }
    return out


def _lines(paths: list[Path]) -> Iterator[ResultLine]:
    for path in paths:
        with reading("results file", path), open(path, "rb") as f:
            yield from read_result_lines(f)


def ran_simulated(results: Path) -> bool:
    """Whether the job that wrote `results` ran on the simulator, as its checkpoint (beside it,
    if still there) records: a simulated run's report must not pass for a real one."""
    try:
        state = orjson.loads(checkpoint_path(results).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    identity = state.get("identity") if isinstance(state, dict) else None
    return isinstance(identity, dict) and identity.get("base_url") == SIMULATED_BASE_URL


def write_html_report(
    results: Path | Sequence[Path], prices: PriceBook, out: Path, compare: list[str] | None = None
) -> dict[str, Any]:
    """Write the HTML run report of a results file (or a job's parts) to `out` (whole or not at
    all); returns the report's data."""
    timeline = RunTimeline()
    data = report(results, prices, compare or [], timeline)
    names = str(results) if isinstance(results, Path) else ", ".join(map(str, results))
    page = render_report(data, timeline, names).encode()
    with replacing(out, "the HTML report", mode="wb") as f:
        f.write(page)
    return data


def check_html_path(out: Path | None, *sources: Path) -> None:
    """Before a run: a report that could not be written at its end, or would replace one of
    the job's files, is refused now."""
    if out is None:
        return
    check_target(out, "the HTML report")
    if any(out.resolve() == p.resolve() for p in sources):
        raise ConfigError(f"the HTML report {out} would overwrite {out.name}, a file of the job")
    for source in sources:  # each may be a results file with its checkpoint and lock beside it
        refuse_job_file("--html", out, job_files(None, source))
