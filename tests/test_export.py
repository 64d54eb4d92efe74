"""`batchrun export`: a real run's results, shuffled, joined back to the input in input order."""

from __future__ import annotations

import base64
import csv
import io
import json
import random
import struct
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.records import Result, Usage
from batchrun.results.answer import answer_object, answer_text
from batchrun.store.wire import result_line

from .conftest import write_jsonl
from .test_process import run

FAILING = "doomed-model"


def export(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["export", *args], catch_exceptions=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")  # so a spreadsheet reads it as UTF-8
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def _input_600() -> tuple[list[Any], dict[int, str]]:
    """600 plain records over two models and a failing one, with bad lines among them; and the
    status each non-blank line must end with, by line number."""
    rows: list[Any] = []
    expected: dict[int, str] = {}
    for i in range(600):
        model = FAILING if i % 50 == 7 else ("sim-small" if i % 3 else "gpt-4o-mini")
        rows.append({"id": f"t{i:04d}", "text": f"ticket {i}: my parcel is late ({'é' * (i % 3)})",
                     "priority": i % 4, "score": i / 8, "vip": i % 5 == 0, "model": model,
                     "tags": ["a", "b"], "note": None if i % 2 else "call back"})
        expected[len(rows)] = "failed" if model == FAILING else "ok"
    for at, bad in ((10, "{not json"), (200, "[1, 2]"), (333, json.dumps({"id": "t0005", "text": "dup"})),
                    (450, "")):
        rows.insert(at, bad)
    expected = {}
    for n, row in enumerate(rows, 1):
        if row == "":
            continue
        if isinstance(row, str):
            expected[n] = "invalid"
        else:
            expected[n] = "failed" if row["model"] == FAILING else "ok"
    return rows, expected


def test_export_of_a_600_record_run_is_in_input_order_with_right_statuses(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=5, jitter_ms=20, failing_models=(FAILING,), seed=2)
    rows, expected = _input_600()
    inp = write_jsonl(tmp_path / "tickets.jsonl", rows)
    out = tmp_path / "tickets.results.jsonl"
    res = run([str(inp), "--base-url", sim.url, "--quiet", "--concurrency", "32", "--max-attempts", "2",
               "--model-field", "model"])
    assert res.exit_code == 1, res.output
    lines = out.read_bytes().splitlines(keepends=True)
    assert len(lines) == len(expected)
    random.Random(5).shuffle(lines)  # whatever order they were written in
    dropped = lines.pop()  # and one result lost: its row is `missing`
    out.write_bytes(b"".join(lines))
    missing_line = json.loads(dropped)["batchrun"]["line"]
    expected[missing_line] = "missing"

    res = export([str(out), "--input", str(inp), "-o", str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    table = read_csv(tmp_path / "t.csv")
    assert [int(r["line"]) for r in table] == sorted(expected)
    assert {int(r["line"]): r["status"] for r in table} == expected
    by_line = {n: row for n, row in enumerate(rows, 1)}
    for r in table:
        n = int(r["line"])
        src = by_line[n]
        if r["status"] == "missing":
            assert r["answer"] == r["model"] == ""
            continue
        if r["status"] == "invalid":
            assert r["key"] == f"line-{n}" and r["error_code"] == "invalid_input"
            continue
        assert isinstance(src, dict)
        assert r["key"] == src["id"] == r["id"] and r["text"] == src["text"]
        assert r["priority"] == str(src["priority"]) and float(r["score"]) == src["score"]
        assert r["vip"] == ("true" if src["vip"] else "false") and r["note"] == (src["note"] or "")
        assert r["input.model"] == src["model"]  # the input's own field, beside the model that answered
        if r["status"] == "ok":
            assert r["answer"] and r["model"] == src["model"] and int(r["output_tokens"]) > 0
            if r["model"] == "gpt-4o-mini":  # sim-small has no known price
                assert r["cost_usd"] != "" and "e" not in r["cost_usd"]
            else:
                assert r["cost_usd"] == ""
        elif r["status"] == "failed":
            assert r["answer"] == "" and r["error_code"]
    assert "tags" not in table[0]  # not a scalar field
    assert f"{len(table)} row(s)" in res.stderr and "1 missing" in res.stderr


def _result(key: str, line: int, body: Any, ok: bool = True) -> bytes:
    return result_line(Result(key=key, line=line, model="m", status_code=200 if ok else 500, body=body,
                              error_code=None if ok else "server_error", error_message=None if ok else "boom",
                              attempts=1, usage=Usage(10, 5), cost_usd=0.0000105), 1.0)


def _chat(text: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def test_answer_text_of_every_endpoint_and_odd_bodies() -> None:
    vec = base64.b64encode(struct.pack("<3f", 0.1, 0.2, 0.3)).decode()
    assert answer_text(_chat("hi")) == "hi"
    assert answer_text({"choices": [{"message": {"content": [{"type": "text", "text": "a"},
                                                             {"type": "text", "text": "b"}]}}]}) == "ab"
    assert answer_text({"choices": [{"text": "completed", "index": 0}]}) == "completed"
    assert answer_text({"output": [{"type": "reasoning", "summary": []},
                                   {"type": "message", "content": [{"type": "output_text", "text": "resp"},
                                                                   {"type": "refusal", "refusal": "no"}]}]}) == "resp"
    assert answer_text({"data": [{"embedding": [0.0] * 1536}]}) == "1536"
    assert answer_text({"data": [{"embedding": vec}]}) == "3"
    calls = answer_text({"choices": [{"message": {"content": None, "tool_calls": [{"id": "c1"}]}}]})
    assert calls is not None and json.loads(calls) == [{"id": "c1"}]
    for odd in (None, [], "text", {"choices": []}, {"choices": ["x"]}, {"output": "x"}, {"data": [{}]},
                {"choices": [{"message": {"content": 5}}]}, {"data": [{"embedding": "not base64!"}]}):
        assert answer_text(odd) is None
    assert answer_object('```json\n{"category": "billing"}\n```') == {"category": "billing"}
    assert answer_object('{"a": 1}') == {"a": 1} and answer_object("[1]") is None and answer_object("no") is None


def test_parse_json_adds_answer_columns_and_jsonl_format(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": f"r{i}", "text": f"t{i}"} for i in range(5)])
    results = tmp_path / "in.results.jsonl"
    results.write_bytes(b"".join([
        _result("r4", 5, {"output": [{"type": "message", "content": [
            {"type": "output_text", "text": '{"category": "billing", "urgency": "high", "extra": [1]}'}]}]}),
        _result("r0", 1, _chat('{"category": "shipping", "urgency": "low"}')),
        _result("r2", 3, _chat("not json at all")),
        _result("r1", 2, None, ok=False),
        _result("r3", 4, _chat('```json\n{"urgency": "medium"}\n```')),
    ]))
    res = export([str(results), "-i", str(inp), "--parse-json", "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output
    table = read_csv(tmp_path / "o.csv")
    assert [r["key"] for r in table] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r["answer.category"] for r in table] == ["shipping", "", "", "", "billing"]
    assert [r["answer.urgency"] for r in table] == ["low", "", "", "medium", "high"]
    assert table[4]["answer.extra"] == "[1]" and table[1]["status"] == "failed"
    assert table[2]["answer"] == "not json at all" and table[0]["cost_usd"] == "0.0000105"

    res = export([str(results), "-i", str(inp), "--parse-json", "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 0, res.output
    docs = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [d["key"] for d in docs] == ["r0", "r1", "r2", "r3", "r4"]
    assert docs[0]["answer.category"] == "shipping" and docs[1]["answer"] is None
    assert docs[0]["input_tokens"] == 10 and docs[0]["cost_usd"] == 0.0000105


def test_bad_files_and_flags_are_one_sentence_and_exit_2(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "r0", "text": "t"}])
    results = tmp_path / "in.results.jsonl"
    results.write_bytes(_result("r0", 1, _chat("x")))
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "zzz", "text": "t"}])
    cases = [
        ([str(tmp_path / "nope.jsonl"), "-i", str(inp)], "cannot read results file"),
        ([str(results), "-i", str(tmp_path / "nope.jsonl")], "cannot read input file"),
        ([str(inp), "-i", str(inp)], "is not a batchrun results file"),
        ([str(tmp_path), "-i", str(inp)], "cannot read results file"),
        ([str(results), "-i", str(other)], "does not answer"),
        ([str(results), "-i", str(inp), "--format", "xml"], "--format must be csv or jsonl"),
        ([str(results), "-i", str(inp), "-o", str(tmp_path / "no" / "dir.csv")], "cannot write"),
        ([str(results), "-i", str(inp), "-o", str(inp)], "would overwrite"),
    ]
    for args, words in cases:
        res = export(args)
        assert res.exit_code == 2, (args, res.output)
        assert words in res.stderr and "Traceback" not in res.output
        assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()
    assert inp.read_text().startswith('{"id": "r0"')


def test_export_reads_the_answer_of_every_endpoint_the_simulator_serves(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "samples" / "every_endpoint.jsonl"
    inp = tmp_path / sample.name
    inp.write_bytes(sample.read_bytes())
    res = CliRunner().invoke(app, ["process", str(inp), "--simulate", "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "e.jsonl"
    res = export([str(tmp_path / "every_endpoint.results.jsonl"), "-i", str(inp), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        kind = r["key"].split("-")[0]
        if kind == "embedding":
            assert r["answer"] == "8"  # the request's dimensions
        else:
            assert isinstance(r["answer"], str) and r["answer"].strip().isalpha(), r
