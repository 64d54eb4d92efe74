"""A model the provider does not serve (a typo in --model) stops the job after a handful of
model_not_found answers: one sentence naming the model, exit 2, nothing marked failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchrun.errors import UnknownModel
from batchrun.send.unknown_model import HANDFUL, ModelWatch

from .conftest import plain_records, read_results, write_jsonl
from .test_process import run


def test_a_typo_in_the_model_stops_early_with_exit_2(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(strict_models=True)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(400))
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-minii", "--concurrency", "16",
               "--summary-json", str(tmp_path / "s.json")])
    assert res.exit_code == 2, res.output
    assert "does not serve the model 'gpt-4o-minii'" in res.output
    print(f"unknown model: exit {res.exit_code}, {sim.stats.requests} requests of 400 records")
    assert sim.stats.requests <= 20
    summ = json.loads((tmp_path / "s.json").read_text())
    assert summ["job"]["stopped"] == "unknown_model" and summ["records"]["failed"] == 0
    out = tmp_path / "in.results.jsonl"
    assert not out.exists() or read_results(out) == []  # nothing marked failed
    assert "did you mean 'gpt-4o-mini'" in res.output  # the provider's own list, asked once it stopped
    assert "--fresh" not in res.output
    # nothing was written: the same command with the name fixed starts the job, no --fresh needed
    fixed = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    assert len(read_results(tmp_path / "in.results.jsonl")) == 400


def test_a_model_that_answered_before_is_not_called_unknown() -> None:
    """Once a model has answered, a model_not_found is that record's own failure, not a stop."""
    watch = ModelWatch()
    watch.refused("gw/m", "gw", "m", "no")
    watch.answered("gw", "m")
    assert not watch.unproven("gw", "m") and watch.unproven(None, "m")
    with pytest.raises(UnknownModel, match="'other'"):
        for _ in range(HANDFUL):
            watch.refused("other", None, "other", "HTTP 404")
