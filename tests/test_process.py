"""`batchrun process` end to end through the CLI, against the simulator on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, serving, write_jsonl

KEY = "sk-test-NEVER-PRINT-ME-0123456789"


def run(args: list[str], env: dict[str, str] | None = None) -> Any:
    base_env = {"BATCHRUN_API_KEY": KEY, "BATCHRUN_RETRY_BASE": "0.01", "OPENAI_API_KEY": "",
                "BATCHRUN_BASE_URL": "", "OPENAI_BASE_URL": ""}
    base_env.update(env or {})
    clean = {k: v for k, v in base_env.items() if v != ""}
    # CliRunner's env= only adds; blank the ones we do not want to leak in from the machine
    for k in ("OPENAI_API_KEY", "BATCHRUN_BASE_URL", "OPENAI_BASE_URL"):
        if k not in clean:
            clean[k] = None  # type: ignore[assignment]
    return CliRunner().invoke(app, ["process", *args], env=clean, catch_exceptions=False)


def test_every_shape_and_bad_line_gives_exactly_one_line(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    rows: list[Any] = [
        {"custom_id": "b1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "batch one"}]}},
        {"custom_id": "c1", "messages": [{"role": "user", "content": "chat body"}]},
        {"id": "p1", "text": "plain record"},
        "",
        "{not json",
        b'{"id": "u", "text": "\xff\xfe"}',
        "[1, 2]",
        {"id": "nomsg", "subject": "x"},
        {"id": "p1", "text": "duplicate key"},
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"])
    assert res.exit_code == 1, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 8  # 9 lines, one blank
    by_id = {o["custom_id"]: o for o in out}
    assert {k for k in by_id if not k.startswith("line-")} == {"b1", "c1", "p1"}
    for key in ("b1", "c1", "p1"):
        assert by_id[key]["error"] is None
        assert by_id[key]["response"]["status_code"] == 200
        assert by_id[key]["batchrun"]["model"] == "gpt-4o-mini"
    bad = {k: v["error"] for k, v in by_id.items() if k.startswith("line-")}
    assert set(bad) == {"line-5", "line-6", "line-7", "line-8", "line-9"}
    assert all(e["code"] == "invalid_input" for e in bad.values())
    assert "line 9: duplicate key 'p1'" == bad["line-9"]["message"]
    assert "UTF-8" in bad["line-6"]["message"]
    assert sim.stats.requests == 3


def test_retries_on_each_retryable_failure_counted_by_server(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(fail_first=4, fail_kinds=("429", "500", "reset", "500"))
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(12))
    summary = tmp_path / "s.json"
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--summary-json", str(summary)])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 12
    assert all(o["error"] is None and o["batchrun"]["attempts"] == 5 for o in out)
    assert all(o["batchrun"]["rate_limited"] == 1 for o in out)
    assert set(sim.stats.by_prompt.values()) == {5}
    s = json.loads(summary.read_text())
    assert s["models"]["m"]["attempts"] == 60 == sim.stats.requests
    assert s["models"]["m"]["rate_limited"] == 12


def test_timeout_is_retried(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(fail_first=1, fail_kinds=("timeout",), hang_s=1.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--timeout", "0.3"])
    assert res.exit_code == 0, res.output
    assert [o["batchrun"]["attempts"] for o in read_results(tmp_path / "in.results.jsonl")] == [2, 2, 2]


def test_exhausted_retries_and_fatal_errors_are_error_lines(tmp_path: Path, sim_factory) -> None:
    """A record fails on its own for its own reasons: one model is overloaded (503 every time)
    while the provider answers the other, so the job is not stopped as if the provider were down."""
    sim = sim_factory(failing_models=("busy",))
    rows = plain_records(20) + [{**r, "model": "busy"} for r in plain_records(4, prefix="b")]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--max-attempts", "3",
               "--model-field", "model"])
    assert res.exit_code == 1
    out = {o["custom_id"]: o for o in read_results(tmp_path / "in.results.jsonl")}
    assert len(out) == 24
    for key in ("b0", "b1", "b2", "b3"):
        o = out[key]
        assert o["error"]["code"] == "server_error"
        assert "gave up after 3 failed attempts" in o["error"]["message"]
        assert o["response"]["status_code"] == 503
    assert sum(1 for o in out.values() if o["error"] is None) == 20
    assert sim.stats.requests == 20 + 12


def test_401_stops_fast_with_exit_3_naming_the_variable(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(api_key="the-right-key", latency_ms=5)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(500))
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--concurrency", "4"])
    assert res.exit_code == 3
    assert sim.stats.requests <= 8  # the in-flight few, not 500
    assert "BATCHRUN_API_KEY" in res.output
    assert KEY not in res.output
    assert read_results(tmp_path / "in.results.jsonl") == []  # nothing written: all resumable


def test_summary_sums_equal_output_usage_equal_server_counts(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(error_rate=0.1, error_kinds=("500", "429"), seed=3)
    rows = [{"id": i, "text": f"review {i}: " + "good " * (i % 13)} for i in range(200)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    summary = tmp_path / "s.json"
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet",
               "--summary-json", str(summary), "--concurrency", "20"])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    s = json.loads(summary.read_text())
    m = s["models"]["gpt-4o-mini"]
    assert len(out) == 200 == s["records"]["succeeded"] == m["requests"]
    in_tok = sum(o["batchrun"]["input_tokens"] for o in out)
    out_tok = sum(o["batchrun"]["output_tokens"] for o in out)
    assert in_tok == m["input_tokens"] == sim.stats.prompt_tokens
    assert out_tok == m["output_tokens"] == sim.stats.completion_tokens
    assert sum(o["batchrun"]["attempts"] for o in out) == m["attempts"] == sim.stats.requests
    assert sum(o["batchrun"]["cost_usd"] for o in out) == pytest.approx(s["total_cost_usd"], abs=1e-9)
    # gpt-4o-mini at $0.15 / $0.60 per million tokens
    assert s["total_cost_usd"] == pytest.approx((in_tok * 0.15 + out_tok * 0.60) / 1e6, abs=1e-9)
    assert m["latency_ms"]["p50"] is not None


def test_key_never_appears_in_any_file_or_printed_line(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(api_key=KEY, error_rate=0.2, seed=1)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30) + ["{bad"])
    log = tmp_path / "run.log"
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--summary-json",
               str(tmp_path / "s.json"), "--log-file", str(log), "--progress-interval", "0.05"])
    assert res.exit_code == 1, res.output
    assert sim.stats.ok >= 20  # the key was really used
    assert KEY not in res.output
    files = list(tmp_path.iterdir())
    assert len(files) >= 4
    for f in files:
        assert KEY.encode() not in f.read_bytes(), f
    # and a wrong key that the server echoes back is scrubbed from the error lines
    sim2 = sim_factory(api_key="other")
    res = run([str(inp), "--base-url", sim2.url, "--model", "m", "-o", str(tmp_path / "o2.jsonl")])
    assert res.exit_code == 3 and KEY not in res.output


def test_plain_progress_lines_off_a_terminal(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=30)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(40))
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--progress-interval", "0.1",
               "--concurrency", "4"])
    assert res.exit_code == 0
    lines = [ln for ln in res.stdout.splitlines() if " done" in ln]
    assert len(lines) >= 2
    assert lines[-1].split(" ")[0].endswith("Z") and "40/40 done" in lines[-1]
    assert "\x1b[" not in res.stdout  # no animation codes for cron


def test_simulate_marks_everything(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(20))
    res = run([str(inp), "--simulate", "--summary-json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert "SIMULATED" in res.output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["job"]["simulated"] is True and s["records"]["succeeded"] == 20


def test_pretty_printed_answers_still_make_one_line_each(tmp_path: Path) -> None:
    """A server that pretty-prints its JSON: the answer is copied as is, newlines folded."""
    body = ('{\n  "id": "x",\n  "choices": [\n    {"message": {"content": "line one\\nline two"}}\n  ],\n'
            '  "usage": {"prompt_tokens": 3,\r\n "completion_tokens": 2}\n}\n')

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    with serving(handler) as url:
        inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
        res = run([str(inp), "--base-url", url, "--model", "m", "--quiet"])
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "in.results.jsonl").read_bytes().split(b"\n")
    assert len([ln for ln in lines if ln]) == 3 and b"\r" not in b"".join(lines)
    out = read_results(tmp_path / "in.results.jsonl")
    assert out[0]["response"]["body"]["choices"][0]["message"]["content"] == "line one\nline two"
    assert out[0]["batchrun"]["input_tokens"] == 3
