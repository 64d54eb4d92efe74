"""The migration's figures add up: a canary and a shadow against two simulators, counted at the
servers. Total cost = every result line's cost + every shadow line's cost = the providers' costs;
each provider's requests = what its server received; across a resume too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import plain_records, read_results, write_jsonl
from .test_migration import batchrun, process, toml


def _line_cost(path: Path) -> float:
    return sum(r["batchrun"]["cost_usd"] or 0.0 for r in read_results(path)) if path.exists() else 0.0


def _check_adds_up(summ: dict[str, Any], out: Path, servers: dict[str, Any]) -> None:
    total = summ["total_cost_usd"]
    lines = _line_cost(out) + _line_cost(out.with_name(out.stem + ".shadow.jsonl"))
    assert abs(total - lines) < 1e-6, (total, lines)
    assert abs(sum(summ["cost_split_usd"].values()) - total) < 1e-6, summ["cost_split_usd"]
    providers = summ["providers"]
    assert abs(sum(p["cost_usd"] for p in providers.values()) - total) < 1e-6, providers
    for name, sim in servers.items():
        p = providers[name]
        assert p["requests"] == sim.stats.requests, (name, p, sim.stats.requests)
        assert p["requests"] == p["succeeded"] + p["failed"] + p["rate_limited"], p
        assert p["rate_limited"] == sim.stats.rate_limited, (name, p)
        assert abs(sum(p["cost_split_usd"].values()) - p["cost_usd"]) < 1e-6, p


def test_canary_and_shadow_costs_and_requests_add_up_across_a_resume(tmp_path: Path, sim_factory: Any) -> None:
    old = sim_factory(api_key="old-secret-key-1234", latency_ms=2, error_rate=0.03, error_kinds=("500",),
                      seed=5)
    new = sim_factory(api_key="new-secret-key-5678", latency_ms=2, error_rate=0.15, error_kinds=("500",), seed=7,
                      differ_share=0.3)
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/gpt-4o-mini"\nshare = 0.3\nwindow = 40\n'
               'max_error_rate = 0.2\n[shadow]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    rows = plain_records(200)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    first, summ = process(tmp_path, inp, cfg, "--max-cost", "0.004", "--concurrency", "4")
    assert first.returncode == 3, first.stderr  # stopped by the budget, resumable
    assert 0 < len(read_results(out)) < 200
    _check_adds_up(summ, out, {"old": old, "new": new})
    status = json.loads(batchrun(["status", str(inp), "--json"]).stdout)
    assert abs(status["cost_usd"] - summ["total_cost_usd"]) < 1e-6 and status["cost_split_usd"]["shadow"] > 0

    done, summ = process(tmp_path, inp, cfg, "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    assert len(read_results(out)) == 200
    _check_adds_up(summ, out, {"old": old, "new": new})
    split = summ["cost_split_usd"]
    assert split["main"] > 0 and split["canary"] > 0 and split["shadow"] > 0
    assert summ["providers"]["new"]["failed"] > 0 and summ["providers"]["old"]["failed"] > 0
    assert "canary $" in done.stdout and "shadow $" in done.stdout  # the split, in the terminal summary
    status = json.loads(batchrun(["status", str(inp), "--json"]).stdout)
    assert abs(status["cost_usd"] - summ["total_cost_usd"]) < 1e-6


def test_429s_at_a_canary_and_a_shadow_are_requests_of_their_provider(tmp_path: Path, sim_factory: Any) -> None:
    """Each 429 counts at the model it came from, the canary's before its rescue included."""
    old = sim_factory(api_key="old-secret-key-1234", latency_ms=2)
    new = sim_factory(api_key="new-secret-key-5678", latency_ms=2, error_rate=0.2, error_kinds=("429", "500"),
                      retry_after="ms", seed=3)
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/gpt-4o-mini"\nshare = 0.5\nwindow = 40\n'
               'max_error_rate = 0.5\nmin_success_rate = 0.5\nmax_consecutive_failures = 40\n'
               '[shadow]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(40))
    # a stated rate: 429s at slow start would otherwise pace this small job down to a crawl
    done, summ = process(tmp_path, inp, cfg, "--concurrency", "4", "--rpm", "3000")
    assert done.returncode == 0, done.stderr
    assert new.stats.rate_limited > 0 and new.stats.statuses[500] > 0
    _check_adds_up(summ, tmp_path / "in.results.jsonl", {"old": old, "new": new})


def test_a_dead_canary_has_no_cost_per_answer(tmp_path: Path, sim_factory: Any) -> None:
    old = sim_factory(api_key="old-secret-key-1234", latency_ms=2)
    cfg = toml(tmp_path, old.url, "http://127.0.0.1:9/v1",
               '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(80))
    done, summ = process(tmp_path, inp, cfg)
    assert done.returncode == 0, done.stderr
    c = summ["canary"]
    assert c["state"] == "rolled_back" and c["canary"]["answered"] == 0
    assert c["canary"]["cost_per_1k_answered_usd"] is None and c["baseline"]["cost_per_1k_answered_usd"] > 0
    row = next(line for line in done.stdout.splitlines() if "cost / 1,000 answered" in line)
    assert "—" in row and f"({c['baseline']['answered']} answered)" in row, row
    assert summ["providers"]["new"]["succeeded"] == 0 and summ["providers"]["new"]["cost_usd"] == 0


def test_requests_of_failed_lines_still_count_after_retry_failed(tmp_path: Path, sim_factory: Any) -> None:
    old = sim_factory(api_key="old-secret-key-1234", error_rate=0.3, error_kinds=("500",), seed=1)
    cfg = toml(tmp_path, old.url, old.url)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30))
    args = ("--max-attempts", "1", "--concurrency", "1")
    first, summ = process(tmp_path, inp, cfg, *args)
    assert first.returncode == 1 and summ["records"]["failed"] > 0
    done, summ = process(tmp_path, inp, cfg, *args, "--retry-failed")
    assert done.returncode in (0, 1), done.stderr
    p = summ["providers"]["old"]  # the failed lines dropped by --retry-failed: their requests still count
    assert p["requests"] == old.stats.requests and p["failed"] == old.stats.statuses[500] > 0, p
