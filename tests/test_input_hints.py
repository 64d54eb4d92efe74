"""A new user's slips said before anything is sent: a --model-field no record has, a results file
given as the input; and `status --part K/N` naming the part before it has started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, write_jsonl
from .test_process import run


def test_a_model_field_no_record_has_is_said_once(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30))
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--model-field", "tier"])
    assert res.exit_code == 0, res.output
    said = [x for x in res.output.splitlines() if "--model-field tier" in x]
    assert len(said) == 1 and "none of the first 30 plain record(s) has a field 'tier'" in said[0]
    assert "they go to --model gpt-4o-mini" in said[0] and "fields seen: id, text" in said[0]
    assert all(o["response"]["body"]["model"] == "gpt-4o-mini" for o in read_results(tmp_path / "in.results.jsonl"))
    rows = [{**r, "tier": "gpt-4o-mini"} if i == 7 else r for i, r in enumerate(plain_records(30))]
    inp2 = write_jsonl(tmp_path / "in2.jsonl", rows)  # one record has it: nothing to say
    res = run([str(inp2), "--base-url", sim.url, "--model", "gpt-4o-mini", "--model-field", "tier"])
    assert res.exit_code == 0 and "--model-field tier" not in res.output


def test_a_results_file_as_the_input_is_named_as_one(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    assert run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini"]).exit_code == 0
    results = tmp_path / "in.results.jsonl"
    res = run([str(results), "--base-url", sim.url, "--model", "gpt-4o-mini", "-o", str(tmp_path / "again.jsonl")])
    assert "looks like a results file" in res.output
    out = read_results(tmp_path / "again.jsonl")
    assert len(out) == 5 and sim.stats.requests == 5  # nothing more was sent
    by_line = {o["batchrun"]["line"]: o for o in out}
    first = json.loads(results.read_text().splitlines()[0])["custom_id"]
    msg = by_line[1]["error"]["message"]
    assert by_line[1]["custom_id"] == "line-1"  # the output's key for a bad line (SPEC), its own named in the message
    assert f"(key {first!r}) this is a line of a results file" in msg and "pass the job's input file" in msg


def test_status_of_a_part_not_started_names_the_part(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(4))
    res = CliRunner().invoke(app, ["status", str(inp), "--part", "2/4"])
    assert res.exit_code == 0, res.output
    assert "state: part 2 of 4 not started" in res.output
    st = json.loads(CliRunner().invoke(app, ["status", str(inp), "--part", "2/4", "--json"]).output)
    assert (st["state"], st["part"]) == ("not_started", "2/4")
