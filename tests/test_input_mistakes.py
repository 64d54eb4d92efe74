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



def test_a_model_field_value_that_names_no_model_is_a_bad_line(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    rows = [{"id": "ok", "llm": "gpt-4o-mini", "text": "a"}, {"id": "empty", "llm": "", "text": "b"},
            {"id": "number", "llm": 5, "text": "c"}, {"id": "none", "text": "d"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "gpt-4.1-mini", "--model-field", "llm",
               "--quiet"])
    assert res.exit_code == 1, res.output
    out = {r["custom_id"]: r for r in read_results(tmp_path / "in.results.jsonl")}
    assert out["ok"]["error"] is None and out["ok"]["response"]["body"]["model"] == "gpt-4o-mini"
    assert out["none"]["error"] is None and out["none"]["response"]["body"]["model"] == "gpt-4.1-mini"
    for n, value in ((2, "''"), (3, "5")):
        err = out[f"line-{n}"]["error"]
        assert err["code"] == "invalid_input" and f"line {n}" in err["message"], err
        assert "'llm' field (--model-field) names no model: " + value in err["message"], err
    assert sim.stats.requests == 2

CSV = b"id,text,model\n1,the parcel is late,Corolla\n2,refund please,Civic\n"


def test_a_file_that_is_not_jsonl_is_one_sentence_before_anything_is_sent(tmp_path: Path, sim_factory) -> None:
    import gzip

    sim = sim_factory()
    good = b'{"id": 1, "text": "hi"}\n{"id": 2, "text": "there"}\n'
    cases = {
        "t.csv.gz": (gzip.compress(CSV), "looks like CSV, not JSONL"),
        "t.zst": (b"(\xb5/\xfd" + bytes(50), "is zstd-compressed, not JSONL: decompress it first"),
        "bad.jsonl.gz": (b"\x1f\x8b\x08" + bytes(40), "is not a readable gzip file"),
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


def test_a_gzip_input_is_read_as_it_is_with_its_lines_numbered_and_resumed(tmp_path: Path, sim_factory) -> None:
    import gzip

    from batchrun.input.gz import Gunzip

    sim = sim_factory()
    rows: list[Any] = [{"id": f"r{i}", "max_tokens": 10, "text": f"word {i} " * 10} for i in range(30)]
    rows[4] = "{bad line"  # line 5
    text = b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in rows)
    inp = tmp_path / "t.jsonl.gz"
    inp.write_bytes(gzip.compress(text[:1000]) + gzip.compress(text[1000:]))  # two members, as `cat` makes
    assert b"".join(Gunzip(7).feed(inp.read_bytes())) == text  # in pieces of at most 7 bytes
    prices = tmp_path / "p.toml"
    prices.write_text('[models."m"]\ninput = 1000\noutput = 1000\n')
    out = tmp_path / "t.jsonl.results.jsonl"
    base = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--prices", str(prices), "--quiet",
            "--concurrency", "2", "-o", str(out)]
    assert cli([*base, "--max-cost", "0.5"]).exit_code == 3  # stopped part way
    first = len(read_results(out))
    assert 0 < first < 30
    res = cli([*base, "--max-cost", "100"])  # resumed: the same job (its identity), the rest of it
    assert res.exit_code == 1, res.output
    results = read_results(out)
    assert len(results) == 30 and sim.stats.requests == 29  # nothing sent twice; the bad line never
    lines = {r["custom_id"]: r["batchrun"]["line"] for r in results}
    assert lines["r0"] == 1 and lines["line-5"] == 5 and lines["r29"] == 30
    st = json.loads(cli(["status", str(inp), "-o", str(out), "--json"]).stdout)
    assert st["records"]["total"] == 30 and st["state"] == "complete"
    csv_out = tmp_path / "t.csv"
    assert cli(["export", str(out), "--input", str(inp), "-o", str(csv_out)]).exit_code == 0
    assert csv_out.read_text(encoding="utf-8-sig").count("\n") == 31  # a header and a row per line
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(text)[:-20])
    res = cli(["process", str(cut), "--base-url", sim.url, "--model", "m", "--quiet"])
    assert res.exit_code == 2 and "cut short" in res.output and sim.stats.requests == 29
