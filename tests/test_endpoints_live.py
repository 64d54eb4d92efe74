"""Every endpoint through the CLI against the simulator on 127.0.0.1: each answer is its
endpoint's own body, and the tokens and cost in the results equal what the server billed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, write_jsonl

ENV = {"BATCHRUN_API_KEY": "sk-endpoint-test", "BATCHRUN_RETRY_BASE": "0.01", "OPENAI_API_KEY": None,
       "BATCHRUN_BASE_URL": None, "OPENAI_BASE_URL": None, "BATCHRUN_ENDPOINT": None}

# USD per million tokens in the bundled genai-prices snapshot: (input, output, cached input)
PRICES = {"gpt-4o-mini": (0.15, 0.60, 0.075), "text-embedding-3-small": (0.02, 0.0, 0.0),
          "gpt-3.5-turbo-instruct": (1.5, 2.0, 1.5), "gpt-4.1-mini": (0.4, 1.6, 0.1)}

# the first thing each endpoint's answer holds
ANSWER_FIELD = {"chat": "choices", "embeddings": "data", "completions": "choices", "responses": "output"}


def cli(args: list[str], env: dict[str, Any] | None = None) -> Any:
    return CliRunner().invoke(app, args, env={**ENV, **(env or {})}, catch_exceptions=False)


def line(key: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": key, "method": "POST", "url": "/v1/" + url, "body": body}


def mixed_rows(n: int) -> list[dict[str, Any]]:
    """n records of each endpoint, interleaved, with the shapes each API takes."""
    rows = []
    for i in range(n):
        text = f"ticket {i}: the parcel is late " + "again " * (i % 5)
        rows += [
            line(f"chat{i}", "chat/completions",
                 {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}),
            line(f"emb{i}", "embeddings", {"model": "text-embedding-3-small", "input": [text, text.upper()]}
                 if i % 2 else {"model": "text-embedding-3-small", "input": text, "dimensions": 8}),
            line(f"cmp{i}", "completions", {"model": "gpt-3.5-turbo-instruct", "prompt": text, "max_tokens": 30}),
            line(f"rsp{i}", "responses", {"model": "gpt-4.1-mini", "instructions": "One word.",
                                          "input": [{"role": "user", "content": [{"type": "input_text",
                                                                                  "text": text}]}]}
                 if i % 2 else {"model": "gpt-4.1-mini", "input": text, "max_output_tokens": 16}),
        ]
    return rows


def endpoint_of(key: str) -> str:
    return {"chat": "chat", "emb": "embeddings", "cmp": "completions", "rsp": "responses"}[key.rstrip("0123456789")]


def test_mixed_endpoint_file_tokens_and_cost_equal_what_the_server_billed(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", mixed_rows(12))
    summary = tmp_path / "s.json"
    res = cli(["process", str(inp), "--base-url", sim.url, "--quiet", "--summary-json", str(summary)])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert sorted(o["custom_id"] for o in out) == sorted(r["custom_id"] for r in mixed_rows(12))
    tokens: dict[str, list[int]] = {name: [0, 0, 0] for name in ANSWER_FIELD}
    for o in out:
        name, b = endpoint_of(o["custom_id"]), o["batchrun"]
        assert o["error"] is None and ANSWER_FIELD[name] in o["response"]["body"]
        usage = o["response"]["body"]["usage"]
        tokens[name][0] += b["input_tokens"]
        tokens[name][1] += b["output_tokens"]
        tokens[name][2] += 1
        price_in, price_out, _ = PRICES[b["model"]]
        assert b["cost_usd"] == pytest.approx((b["input_tokens"] * price_in + b["output_tokens"] * price_out) / 1e6,
                                              abs=1e-12)
        if name == "embeddings":
            assert b["output_tokens"] == 0 and b["input_tokens"] == usage["prompt_tokens"] > 0
            vectors = o["response"]["body"]["data"]
            assert len(vectors) == (2 if int(o["custom_id"][3:]) % 2 else 1)
        elif name == "responses":
            assert (b["input_tokens"], b["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
    billed = sim.stats.by_endpoint
    for name, (inp_tok, out_tok, n) in tokens.items():
        assert billed[name]["billed"] == n == 12
        assert (billed[name]["prompt_tokens"], billed[name]["completion_tokens"]) == (inp_tok, out_tok), name
    assert billed["embeddings"]["completion_tokens"] == 0
    s = json.loads(summary.read_text())
    assert s["unpriced_models"] == []
    assert s["models"]["text-embedding-3-small"]["output_tokens"] == 0
    assert s["total_cost_usd"] == pytest.approx(sum(o["batchrun"]["cost_usd"] for o in out), abs=1e-9)


@pytest.mark.parametrize(("endpoint", "sent_as"), [("chat", "messages"), ("embeddings", "input"),
                                                   ("completions", "prompt"), ("responses", "input")])
def test_plain_records_go_to_the_endpoint_named(tmp_path: Path, sim_factory, endpoint: str, sent_as: str) -> None:
    sim = sim_factory()
    model = "text-embedding-3-small" if endpoint == "embeddings" else "gpt-4o-mini"
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(6))
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", model, "--quiet", "--endpoint", endpoint,
               "--template", "Ticket: {text}"])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 6 and all(ANSWER_FIELD[endpoint] in o["response"]["body"] for o in out)
    assert set(sim.stats.by_endpoint) == {endpoint}
    billed = sim.stats.by_endpoint[endpoint]
    assert billed["prompt_tokens"] == sum(o["batchrun"]["input_tokens"] for o in out)
    assert billed["completion_tokens"] == sum(o["batchrun"]["output_tokens"] for o in out)
    if endpoint == "embeddings":  # nothing generated: a request counts its input against TPM
        assert sum(sim.stats.ok_charged) == billed["prompt_tokens"] and billed["completion_tokens"] == 0
    # the filled template is what the server saw as the prompt
    assert set(sim.stats.by_prompt) == {f"Ticket: {r['text']}" for r in plain_records(6)}


def test_embeddings_from_env_and_config_are_priced_by_input(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    summary = tmp_path / "s.json"
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "text-embedding-3-small", "--quiet",
               "--summary-json", str(summary)], env={"BATCHRUN_ENDPOINT": "embeddings"})
    assert res.exit_code == 0, res.output
    s = json.loads(summary.read_text())["models"]["text-embedding-3-small"]
    assert s["output_tokens"] == 0 and s["input_tokens"] == sim.stats.by_endpoint["embeddings"]["prompt_tokens"]
    assert s["cost_usd"] == pytest.approx(s["input_tokens"] * 0.02 / 1e6, abs=1e-12)
    # the same job, endpoint from batchrun.toml: it resumes (same identity) and has nothing to send
    toml = tmp_path / "batchrun.toml"
    toml.write_text('endpoint = "embeddings"\n')
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "text-embedding-3-small", "--quiet",
               "--config", str(toml)])
    assert res.exit_code == 0, res.output
    assert sim.stats.requests == 5
    # sending it to chat now would be another job: refused, nothing sent
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "text-embedding-3-small", "--quiet"])
    assert res.exit_code == 2 and "endpoint" in res.output and sim.stats.requests == 5


def test_unpriced_embedding_model_is_unknown_with_a_warning(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "my-embedder", "--endpoint", "embeddings",
               "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.count("no price is known for model 'my-embedder'") == 1
    assert all(o["batchrun"]["cost_usd"] is None for o in read_results(tmp_path / "in.results.jsonl"))


def test_a_bad_body_per_endpoint_becomes_an_invalid_line_and_is_not_sent(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    rows = [
        line("ok", "embeddings", {"model": "text-embedding-3-small", "input": "fine"}),
        line("e", "embeddings", {"model": "text-embedding-3-small", "input": ""}),
        line("c", "completions", {"model": "gpt-3.5-turbo-instruct", "messages": [{"role": "user", "content": "x"}]}),
        line("r", "responses", {"model": "gpt-4.1-mini", "input": []}),
        line("h", "chat/completions", {"model": "gpt-4o-mini", "input": "x"}),
        line("m", "moderations", {"model": "omni-moderation-latest", "input": "x"}),
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = cli(["process", str(inp), "--base-url", sim.url, "--quiet"])
    assert res.exit_code == 1, res.output
    out = {o["custom_id"]: o for o in read_results(tmp_path / "in.results.jsonl")}
    assert out["ok"]["error"] is None
    bad = {k: v["error"] for k, v in out.items() if k != "ok"}
    assert set(bad) == {"line-2", "line-3", "line-4", "line-5", "line-6"}
    assert all(e["code"] == "invalid_input" for e in bad.values())
    assert "empty string" in bad["line-2"]["message"] and "prompt" in bad["line-3"]["message"]
    assert "input" in bad["line-4"]["message"] and "messages" in bad["line-5"]["message"]
    assert "/v1/moderations" in bad["line-6"]["message"] and "/v1/responses" in bad["line-6"]["message"]
    assert sim.stats.requests == 1


def test_estimate_covers_every_endpoint(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", mixed_rows(4))
    res = cli(["estimate", str(inp), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["lines"] == {"valid": 16, "invalid": 0} and data["unpriced_models"] == []
    emb = data["models"]["text-embedding-3-small"]
    assert emb["max_output_tokens"] == 0 and emb["cost_min_usd"] == emb["cost_max_usd"] > 0
    assert data["models"]["gpt-3.5-turbo-instruct"]["max_output_tokens"] == 4 * 30
    assert data["models"]["gpt-4.1-mini"]["max_output_tokens"] == 2 * 16 + 2 * 512
    plain = write_jsonl(tmp_path / "plain.jsonl", plain_records(3))
    res = cli(["estimate", str(plain), "--json", "--endpoint", "embeddings", "--model", "text-embedding-3-small"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["models"]["text-embedding-3-small"]["max_output_tokens"] == 0


@pytest.mark.parametrize(("args", "says"), [
    (["--endpoint", "moderations"], "chat, embeddings, completions or responses"),
    (["--endpoint", "embeddings", "--system", "Be brief."], "--system"),
])
def test_bad_endpoint_options_are_one_sentence_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    res = cli(["process", str(inp), "--simulate", "--quiet", *args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1 and says in res.output


def test_responses_cached_input_is_read_and_priced_at_the_cached_rate(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    instructions = "Label the ticket. " + " ".join(f"rule{i}" for i in range(1200))  # past 1024 tokens
    rows = [line(f"r{i}", "responses", {"model": "gpt-4.1-mini", "instructions": instructions,
                                        "input": f"ticket {i}", "max_output_tokens": 20}) for i in range(3)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    # one at a time: the simulator caches an instruction it has seen before
    res = cli(["process", str(inp), "--base-url", sim.url, "--quiet", "--concurrency", "1"])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    cached = [o["batchrun"]["cached_tokens"] for o in out]
    assert cached == [o["response"]["body"]["usage"]["input_tokens_details"]["cached_tokens"] for o in out]
    assert sorted(cached)[0] == 0 and sorted(cached)[-1] > 0
    for o in out:
        b = o["batchrun"]
        expected = ((b["input_tokens"] - b["cached_tokens"]) * 0.4 + b["cached_tokens"] * 0.1
                    + b["output_tokens"] * 1.6) / 1e6
        assert b["cost_usd"] == pytest.approx(expected, abs=1e-12)
    assert sim.stats.by_endpoint["responses"]["prompt_tokens"] == sum(o["batchrun"]["input_tokens"] for o in out)


def test_the_every_endpoint_sample_runs_clean_offline(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "samples" / "every_endpoint.jsonl"
    out = tmp_path / "out.jsonl"
    res = cli(["process", str(sample), "--simulate", "--quiet", "-o", str(out)])
    assert res.exit_code == 0, res.output
    results = read_results(out)
    assert len(results) == 12 and all(o["error"] is None and o["batchrun"]["cost_usd"] for o in results)
    fields = {"chat": "choices", "embedding": "data", "completion": "choices", "response": "output"}
    assert all(fields[o["custom_id"].split("-")[0]] in o["response"]["body"] for o in results)
    assert {o["batchrun"]["model"] for o in results} == set(PRICES)
