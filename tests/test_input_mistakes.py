"""A user's mistakes in the input stop early, or never happen: a [route] is a model, a data field
called `model` is data, a file that is not JSONL is one sentence before anything is sent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import read_results, write_jsonl
from .test_cost import ENV


def cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env=ENV, catch_exceptions=False)


def test_a_route_that_covers_every_record_needs_no_model(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text('[route]\nfield = "lang"\nmodels = { en = "gpt-4o-mini", es = "sim-small" }\n')
    rows = [{"id": i, "lang": "en" if i % 3 else "es", "text": f"hello {i}"} for i in range(9)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = cli(["process", str(inp), "--base-url", sim.url, "--config", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    models = Counter(r["response"]["body"]["model"] for r in read_results(tmp_path / "in.results.jsonl"))
    assert models == {"gpt-4o-mini": 6, "sim-small": 3}
    # a route that covers no record is still a missing --model, said once before anything is sent
    sent = sim.stats.requests
    cfg.write_text('[route]\nfield = "lang"\nmodels = { fr = "gpt-4o-mini" }\n')
    res = cli(["process", str(inp), "--base-url", sim.url, "--config", str(cfg), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "pass --model" in res.output and sim.stats.requests == sent


def test_a_plain_records_model_field_is_data_unless_model_field_names_it(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    rows: list[Any] = [{"id": f"car{i}", "model": "x-ignored?", "engine": "sim-small", "text": f"car {i}"}
                       for i in range(3)]
    rows.append({"custom_id": "chat", "model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]})
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    base = ["process", str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"]
    assert cli(base).exit_code == 0
    sent = {r["custom_id"]: r["response"]["body"]["model"] for r in read_results(tmp_path / "in.results.jsonl")}
    assert sent == {"car0": "gpt-4o-mini", "car1": "gpt-4o-mini", "car2": "gpt-4o-mini", "chat": "gpt-4.1-mini"}
    out = tmp_path / "by_field.jsonl"
    res = cli([*base, "--model-field", "engine", "-o", str(out), "--template", "{model}: {text}"])
    assert res.exit_code == 0, res.output
    sent = {r["custom_id"]: r["response"]["body"]["model"] for r in read_results(out)}
    assert sent == {"car0": "sim-small", "car1": "sim-small", "car2": "sim-small", "chat": "gpt-4.1-mini"}
    assert sim.stats.by_prompt["x-ignored?: car 0"] == 1  # the field stays the record's data
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text('model_field = "engine"\n')
    res = cli(["estimate", str(inp), "--config", str(cfg), "--model", "gpt-4o-mini", "--json"])
    assert res.exit_code == 0 and set(json.loads(res.stdout)["models"]) == {"sim-small", "gpt-4.1-mini"}


CSV = b"id,text,model\n1,the parcel is late,Corolla\n2,refund please,Civic\n"


def test_a_file_that_is_not_jsonl_is_one_sentence_before_anything_is_sent(tmp_path: Path, sim_factory) -> None:
    import gzip

    sim = sim_factory()
    good = b'{"id": 1, "text": "hi"}\n{"id": 2, "text": "there"}\n'
    cases = {
        "t.jsonl.gz": (gzip.compress(good), "is gzip-compressed, not JSONL: decompress it first"),
        "t.csv": (CSV, "looks like CSV, not JSONL (its first line is 'id,text,model')"),
        "t.bin": (bytes(range(256)) * 4, "holds binary data (it has NUL bytes)"),
        "t.txt": (b"hello\nworld\n", "does not start with JSON"),
    }
    for name, (data, said) in cases.items():
        inp = tmp_path / name
        inp.write_bytes(data)
        for cmd in (["process", str(inp), "--base-url", sim.url, "--model", "m"],
                    ["process", str(inp), "--base-url", sim.url, "--model", "m", "--batch-api"],
                    ["estimate", str(inp), "--model", "m"]):
            res = cli(cmd)
            assert res.exit_code == 2, (name, cmd, res.output)
            assert f"input file {inp} {said}" in " ".join(res.output.split()), res.output
    assert sim.stats.requests == 0 and not list(tmp_path.glob("*.results.jsonl"))
    # a JSONL file whose first line is broken JSON is a bad line, not a bad file
    inp = tmp_path / "ok.jsonl"
    inp.write_bytes(b'{"id": 0, "text": \n' + good)
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet"])
    assert res.exit_code == 1 and len(read_results(tmp_path / "ok.results.jsonl")) == 3
