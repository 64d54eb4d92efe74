"""A rerun of a complete job sends nothing, and is not counted as a run."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, write_jsonl
from .test_cost import ENV


def test_a_no_op_rerun_of_a_complete_job_is_not_a_run(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    summary = tmp_path / "s.json"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--summary-json", str(summary)]
    runner = CliRunner()
    assert runner.invoke(app, args, env=ENV).exit_code == 0
    sent = sim.stats.requests
    for _ in range(2):
        assert runner.invoke(app, args, env=ENV).exit_code == 0
    assert sim.stats.requests == sent
    assert json.loads(summary.read_text())["job"]["runs"] == 1
    st = json.loads(runner.invoke(app, ["status", str(inp), "--json"], env=ENV).stdout)
    assert st["runs"] == 1 and st["state"] == "complete"
