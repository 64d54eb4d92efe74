"""Plain progress lines (cron, a pipe) and the log file: one line per --progress-interval, whoever
updates the display and however often (a batch job's polls, a deadline's looks), and the last
figures once at the end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from batchrun.show.console import Display, DisplayMode
from batchrun.show.progress import ProgressFigures

from .conftest import plain_records, write_jsonl
from .test_process import run


def _figures(done: int) -> ProgressFigures:
    return ProgressFigures(done=done, total=10, elapsed_s=1.0, rps=1.0, input_tokens=0, output_tokens=0,
                           cost_usd=0.0, cost_unknown=False, retries=0, errors=0, in_flight=0)


def test_updates_within_the_interval_make_one_line_and_the_last_figures_come_at_stop(tmp_path: Path) -> None:
    now = [100.0]
    out = io.StringIO()
    display = Display(DisplayMode.PLAIN, tmp_path / "log.txt", out=out, plain_interval_s=10, clock=lambda: now[0])
    for done in range(5):  # five polls in one second
        display.update(_figures(done))
        now[0] += 0.2
    now[0] += 10
    display.update(_figures(7))  # an interval later: a line
    display.update(_figures(9))  # at once after: held for the end
    display.stop()
    display.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1].split(" done")[0] for line in lines] == ["0/10", "7/10", "9/10"]
    assert len((tmp_path / "log.txt").read_text().splitlines()) == 3  # the log file alike


def test_the_last_line_is_not_written_twice(tmp_path: Path) -> None:
    out = io.StringIO()
    display = Display(DisplayMode.PLAIN, out=out, plain_interval_s=10, clock=lambda: 5.0)
    display.update(_figures(10))
    display.update(_figures(10))  # the lifecycle's last update, same figures as the last poll's
    display.stop()
    assert len(out.getvalue().splitlines()) == 1


def test_a_batch_job_off_a_terminal_prints_a_line_per_interval_not_per_poll(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=0.3)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30))
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--batch-api", "--batch-size", "10",
               "--progress-interval", "600"])
    assert res.exit_code == 0, res.output
    progress = [line for line in res.stdout.splitlines() if " done (" in line]
    assert len(progress) == 2, progress  # the first poll's and the last figures
    assert "30/30 done" in progress[-1]
