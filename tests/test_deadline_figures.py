"""`process --deadline`'s figures agree wherever they are shown: the progress line at every
update, `status` (the checkpoint as saved) read at that same moment, and the summary and `status`
at the end, against the simulator on 127.0.0.1 (the run in-process, its display watched)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.commands.status import job_status
from batchrun.show import console
from batchrun.show.progress import ProgressFigures

from .conftest import plain_records, write_jsonl
from .test_batch_api import _env
from .test_deadline_run import _args
from .test_process import run

LINE = re.compile(r"deadline (\S+), expected (\S+); answered (\d+) in batches, (\d+) live; "
                  r"left (\d+) in batches, (\d+) live, (\d+) waiting")
SPLIT = ("batch_done", "live_done", "invalid", "in_batches", "live", "waiting")


def _watch(monkeypatch: pytest.MonkeyPatch, inp: Path, out: Path) -> list[tuple[float, ProgressFigures, Any]]:
    """Every progress update of the next in-process run: the time, its figures, and `status`'s
    deadline section read from the checkpoint right then."""
    seen: list[tuple[float, ProgressFigures, Any]] = []

    class Watching(console.Display):
        def update(self, s: ProgressFigures) -> None:
            super().update(s)
            seen.append((time.time(), s, job_status(inp, out).get("deadline")))

    monkeypatch.setattr(console, "Display", Watching)
    return seen


def _clock(hms: str, near: float) -> float:
    """An `HH:MM:SSZ` of the progress line as epoch seconds, on the day of `near`."""
    day = datetime.fromtimestamp(near, UTC).strftime("%Y-%m-%d")
    return datetime.fromisoformat(f"{day}T{hms[:-1]}+00:00").timestamp()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _check_moment(at: float, s: ProgressFigures, st: Any, total: int) -> tuple[int, ...]:
    """One update: the line's split adds up to the job, its done is what it answered, its expected
    finish is not in the past while records are left; the checkpoint's figures add up too."""
    m = LINE.search(s.routing or "")
    assert m, s.routing
    split = tuple(int(x) for x in m.groups()[2:])
    ab, al, ib, lv, w = split
    invalid = s.done - ab - al
    assert invalid >= 0 and ab + al + invalid + ib + lv + w == total, s.routing
    # the rest of the line agrees: done already holds the batches' answers, in flight is live requests
    assert s.in_batches == 0 and s.in_flight <= lv, (s.routing, s.in_batches, s.in_flight)
    if ib + lv + w:
        assert m[2] != "?" and _clock(m[2], at) >= int(at) - 1, (s.routing, at)  # never a time gone by
    if st is not None and st["split"]:  # the checkpoint as saved (from the first look on)
        sp = st["split"]
        assert sum(sp[k] for k in SPLIT) == total, st
        if sp["in_batches"] + sp["live"] + sp["waiting"]:
            assert _epoch(st["expected_finish"]) >= _epoch(st["as_of"]), st
    return split


def test_progress_status_and_summary_show_the_same_split_at_every_moment(
        tmp_path: Path, sim_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # live 20 a second, batches 10 lines a second: both paths, batches cancelled, shards held
    sim = sim_factory(rpm=1200, batch_lines_per_s=10.0, batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", [*plain_records(100), "not json"])  # one bad line: sent nowhere
    out = tmp_path / "in.results.jsonl"
    seen = _watch(monkeypatch, inp, out)
    res = run(_args(sim, inp, "--deadline", "8s", "--rpm", "1200", "--progress-interval", "0.2",
                    "--summary-json", str(tmp_path / "s.json")))
    assert res.exit_code == 1, res.output  # the bad line
    assert len(seen) >= 3
    splits = [_check_moment(at, s, st, 101) for at, s, st in seen]
    done = [ab + al for ab, al, *_ in splits]
    assert done == sorted(done) and done[-1] == 100  # never counted back
    summ = json.loads((tmp_path / "s.json").read_text())["deadline"]
    status = json.loads(CliRunner().invoke(app, ["status", str(inp), "--json"]).output)["deadline"]
    last = splits[-1]
    assert (summ["batch"], summ["live"], summ["split"]["invalid"]) == (last[0], last[1], 1)
    assert summ["batch"] == sim.stats.batch_billed and summ["live"] == sim.stats.billed > 0
    assert {k: status[k] for k in ("split", "batch", "live", "met", "cost_usd", "all_live_usd", "all_batch_usd")} \
        == {k: summ[k] for k in ("split", "batch", "live", "met", "cost_usd", "all_live_usd", "all_batch_usd")}
    assert summ["all_live_usd"] >= summ["cost_usd"] > summ["all_batch_usd"] > 0
    said = f"{summ['batch']} record(s) answered through the Batch API, {summ['live']} live (1 bad input line"
    assert said in res.output
    assert said in CliRunner().invoke(app, ["status", str(inp)]).output


def test_after_kill9_the_rerun_shows_a_finish_still_ahead(
        tmp_path: Path, sim_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = sim_factory(rpm=1200, batch_lines_per_s=10.0, batch_step_s=0.05)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(100))
    out = tmp_path / "in.results.jsonl"
    cmd = [sys.executable, "-m", "batchrun", "process", *_args(sim, inp, "--deadline", "8s", "--rpm", "1200")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    batches = sim.sim.batches.batches
    for _ in range(6000):  # until a batch runs (bounded: 60 s)
        if batches or proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    seen = _watch(monkeypatch, inp, out)
    res = run(_args(sim, inp, "--deadline", "8s", "--rpm", "1200", "--progress-interval", "0.2"))
    assert res.exit_code == 0, res.output
    splits = [_check_moment(at, s, st, 100) for at, s, st in seen]
    assert sum(splits[0][2:]) > 0  # the rerun's first line had records left: and a finish ahead
    assert sum(splits[-1][:2]) == 100 and sim.stats.billed + sim.stats.batch_billed == 100
