"""Cost control end to end: estimate vs actual, the --max-cost cap across a resume, fallbacks,
unknown prices, and the models and report commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, write_jsonl
from .test_pricing import AT_03, AT_20

ENV = {"BATCHRUN_API_KEY": "sk-cost-test", "BATCHRUN_RETRY_BASE": "0.01", "OPENAI_API_KEY": None,
       "BATCHRUN_BASE_URL": None, "OPENAI_BASE_URL": None}


def cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env=ENV, catch_exceptions=False)


def reviews(n: int) -> list[dict[str, Any]]:
    return [{"id": f"v{i}", "text": f"Review {i}: the blender is loud but it crushes ice well, "
             f"and the jug cracked after {i % 9 + 1} weeks of daily use."} for i in range(n)]


def test_estimate_counts_and_is_close_to_actual_on_the_simulator(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", reviews(120) + ["{bad", {"id": "v1", "text": "dup"}])
    res = cli(["estimate", str(inp), "--model", "gpt-4o-mini", "--json", "--compare", "deepseek-chat,gpt-4.1-mini"])
    assert res.exit_code == 0, res.output
    est = json.loads(res.stdout)
    assert est["lines"] == {"valid": 120, "invalid": 2}
    m = est["models"]["gpt-4o-mini"]
    assert m["records"] == 120 and m["max_output_tokens"] == 120 * 512
    assert m["cost_min_usd"] < m["cost_max_usd"]
    assert set(est["compare"]) == {"deepseek-chat", "gpt-4.1-mini"}
    assert est["compare"]["deepseek-chat"]["price_source"].startswith("genai-prices")
    assert sim.stats.requests == 0  # no network
    summary = tmp_path / "s.json"
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet",
               "--summary-json", str(summary)])
    assert res.exit_code == 1
    actual = json.loads(summary.read_text())["models"]["gpt-4o-mini"]
    ratio = m["input_tokens"] / actual["input_tokens"]
    print(f"estimate/actual input tokens on the simulator: {ratio:.3f}")
    assert 0.95 <= ratio <= 0.99  # the README states 0.97
    assert actual["cost_usd"] <= m["cost_max_usd"]


def test_max_cost_cap_holds_across_a_resume(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=20)
    prices = tmp_path / "p.toml"
    prices.write_text('[models."m"]\ninput = 1000\noutput = 1000\n')  # $0.001 a token: easy sums
    rows = [{"id": f"r{i}", "text": "word " * 20, "max_tokens": 10} for i in range(60)]
    rows = [{"custom_id": r["id"], "max_tokens": 10, "messages": [{"role": "user", "content": r["text"] + str(i)}]}
            for i, r in enumerate(rows)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    summary = tmp_path / "s.json"
    base = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--prices", str(prices), "--quiet",
            "--concurrency", "4", "--summary-json", str(summary)]
    res = cli([*base, "--max-cost", "1.0"])
    assert res.exit_code == 3, res.output
    assert "--max-cost $1 reached: spent $" in res.output and "raise --max-cost" in res.output
    s = json.loads(summary.read_text())
    # every reservation covers its request here (the margin on the prompt estimate), so the cap
    # holds outright; the documented bound is the cap plus the reservations in flight
    assert 0.75 < s["total_cost_usd"] <= 1.0
    done_first = len(read_results(tmp_path / "in.results.jsonl"))
    assert 0 < done_first < 60
    requests_before = sim.stats.requests
    res = cli([*base, "--max-cost", "1.0"])  # same cap, whole job counted: nothing more fits
    assert res.exit_code == 3
    assert sim.stats.requests - requests_before <= 1
    res = cli([*base, "--max-cost", "100"])  # raise it and the job goes on
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 60 and len({o["custom_id"] for o in out}) == 60
    s = json.loads(summary.read_text())
    assert s["job"]["runs"] == 3
    assert s["total_cost_usd"] == pytest.approx(sum(o["batchrun"]["cost_usd"] for o in out))


def test_fallback_on_404_context_length_and_exhausted_retries(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(strict_models=True, models=("gpt-4o-mini", "deepseek-chat", "sim-small", "flaky"),
                      context_windows={"sim-small": 40}, failing_models=("flaky",))
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text('[context_windows]\n"tiny-window" = 10\n')
    long_text = "please summarise this long complaint about a late parcel " * 10
    rows = [
        {"id": "gone", "model": "retired-model", "text": "short one"},
        {"id": "long", "model": "sim-small", "text": long_text},
        {"id": "precheck", "model": "tiny-window", "text": long_text},
        {"id": "flaky", "model": "flaky", "text": "hello there"},
        {"id": "fine", "model": "gpt-4o-mini", "text": "all good"},
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    summary = tmp_path / "s.json"
    res = cli(["process", str(inp), "--base-url", sim.url, "--quiet", "--config", str(cfg),
               "--fallback-model", "deepseek-chat", "--max-attempts", "2", "--summary-json", str(summary),
               "--model-field", "model"])
    assert res.exit_code == 0, res.output
    out = {o["custom_id"]: o for o in read_results(tmp_path / "in.results.jsonl")}
    reasons = {k: [(f["from"], f["reason"]) for f in o["batchrun"].get("fallbacks", [])] for k, o in out.items()}
    assert all(o["error"] is None for o in out.values())
    assert all(o["batchrun"]["model"] == "deepseek-chat" for k, o in out.items() if k != "fine")
    assert reasons["gone"] == [("retired-model", "model_not_found")]
    assert reasons["long"] == [("sim-small", "context_length_exceeded")]
    assert reasons["precheck"] == [("tiny-window", "context_length_exceeded")]
    assert reasons["flaky"] == [("flaky", "server_error")]
    assert out["flaky"]["batchrun"]["attempts"] == 3  # two on flaky, one on the fallback
    assert reasons["fine"] == [] and out["fine"]["batchrun"]["model"] == "gpt-4o-mini"
    assert "tiny-window" not in json.dumps(sim.stats.to_dict())  # pre-check sent nothing
    s = json.loads(summary.read_text())["models"]
    assert {k: v["fallbacks"] for k, v in s.items() if v["fallbacks"]} == {
        "retired-model": 1, "sim-small": 1, "tiny-window": 1, "flaky": 1}
    assert s["deepseek-chat"]["succeeded"] == 4


def test_unknown_model_cost_is_null_with_one_warning(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    summary = tmp_path / "s.json"
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "sim-small", "--quiet",
               "--summary-json", str(summary)])
    assert res.exit_code == 0
    assert res.output.count("no price is known for model 'sim-small'") == 1
    assert all(o["batchrun"]["cost_usd"] is None for o in read_results(tmp_path / "in.results.jsonl"))
    s = json.loads(summary.read_text())
    assert s["models"]["sim-small"]["cost_usd"] is None and s["unpriced_models"] == ["sim-small"]
    assert s["total_cost_usd"] == 0


def test_models_command_marks_known_prices(sim_factory) -> None:
    sim = sim_factory()
    res = cli(["models", "--base-url", sim.url, "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in json.loads(res.stdout)}
    assert rows["gpt-4o-mini"]["price_source"].startswith("genai-prices")
    assert rows["gpt-4o-mini"]["input_per_mtok"] == 0.15
    assert rows["sim-small"]["price_source"] is None
    res = cli(["models", "--base-url", sim.url, "--show-prices"])
    assert res.exit_code == 0 and "sim-small" in res.stdout and "unknown" in res.stdout


def test_report_of_a_results_file_with_compare(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", reviews(20))
    assert cli(["process", str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"]).exit_code == 0
    res = cli(["report", str(tmp_path / "in.results.jsonl"), "--compare", "deepseek-chat", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    m = r["models"]["gpt-4o-mini"]
    assert r["records"]["succeeded"] == 20 and m["input_tokens"] == sim.stats.prompt_tokens
    # each line is priced at the hour its request was sent: move half of them to 03:00 UTC (list
    # price, $0.27 / $1.10 per MTok) and half to 20:00 UTC (DeepSeek's off-peak half price)
    results = tmp_path / "in.results.jsonl"
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    expected = 0.0
    for i, o in enumerate(lines):
        peak = i % 2 == 0
        o["batchrun"]["started_at"] = AT_03 if peak else AT_20
        rate_in, rate_out = (0.27, 1.10) if peak else (0.135, 0.55)
        expected += (o["batchrun"]["input_tokens"] * rate_in + o["batchrun"]["output_tokens"] * rate_out) / 1e6
    results.write_text("".join(json.dumps(o) + "\n" for o in lines))
    res = cli(["report", str(results), "--compare", "deepseek-chat", "--json"])
    c = json.loads(res.stdout)["compare"]["deepseek-chat"]
    assert c["cost_usd"] == pytest.approx(expected, rel=1e-9)
    res = cli(["report", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "cannot read results file" in res.output


def test_estimate_of_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    res = cli(["estimate", str(tmp_path / "missing.jsonl"), "--model", "m"])
    assert res.exit_code == 2 and "cannot read input file" in res.output and "Traceback" not in res.output


def test_a_small_cap_is_spent_not_stopped_at_by_reservations_in_flight(tmp_path, sim_factory) -> None:
    """16 requests in flight reserving their worst case can hold most of a small cap for a moment:
    the next request waits for them to settle instead of stopping the job with budget left."""
    import json as _json
    import subprocess as _sp
    import sys as _sys

    from .conftest import plain_records as _records
    from .conftest import write_jsonl as _write
    from .test_resume import env as _env

    sim = sim_factory(latency_ms=5)
    inp = _write(tmp_path / "in.jsonl", _records(300))
    summary = tmp_path / "s.json"
    done = _sp.run([_sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", sim.url,
                    "--model", "gpt-4o-mini", "--max-cost", "0.003", "--concurrency", "16", "--quiet",
                    "--summary-json", str(summary)], env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    spent = _json.loads(summary.read_text())["total_cost_usd"]
    assert 0.8 * 0.003 < spent <= 0.003, spent


def test_spend_is_counted_without_a_cap_for_the_progress_line() -> None:
    """A routed job's progress line reads the budget's spend: with no --max-cost it still counts."""
    from batchrun.limit.budget import Budget

    b = Budget(None, spent_usd=0.25)
    assert b.try_reserve(1.0)
    b.settle(0.0, 0.5)
    b.settle(0.0, None)  # an answer of unknown cost adds nothing, never a made-up figure
    assert b.spent_usd == 0.75 and b.reserved_usd == 0.0
