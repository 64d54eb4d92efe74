"""`process --batch-api` end to end against the simulator's /files and /batches on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import plain_records, read_results, write_jsonl
from .test_process import KEY, run

# genai-prices' batch price of gpt-4o-mini (USD per million tokens), half the live one
BATCH_IN, BATCH_OUT = 0.075, 0.3


def _batch_run(sim: Any, inp: Path, *args: str, env_key: str | None = None) -> Any:
    return run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--batch-api", "--quiet", *args],
               env={"BATCHRUN_API_KEY": env_key} if env_key else None)


def _lines(out: list[dict[str, Any]]) -> Counter[str]:
    return Counter(o["custom_id"] for o in out)


def test_thousand_records_make_four_batches_and_no_live_request(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1000))
    res = _batch_run(sim, inp, "--batch-size", "300", "--summary-json", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    st = sim.stats
    assert st.batches_created == 4 and st.files_uploaded == 4
    assert st.requests == 0  # not one live request
    out = read_results(tmp_path / "in.results.jsonl")
    assert _lines(out) == Counter({f"r{i}": 1 for i in range(1000)})
    assert all(o["error"] is None and o["response"]["status_code"] == 200 for o in out)
    tin = sum(o["batchrun"]["input_tokens"] for o in out)
    tout = sum(o["batchrun"]["output_tokens"] for o in out)
    assert (tin, tout) == (st.batch_prompt_tokens, st.batch_completion_tokens)  # what the server billed
    assert st.batch_billed == 1000
    summ = json.loads((tmp_path / "s.json").read_text())
    want = (tin * BATCH_IN + tout * BATCH_OUT) / 1e6
    assert abs(summ["total_cost_usd"] - want) < 1e-9
    assert abs(sum(o["batchrun"]["cost_usd"] for o in out) - want) < 1e-9
    assert [b["requests"] for b in summ["batches"]] == [300, 300, 300, 100]
    assert not (tmp_path / "in.results.jsonl.batches").exists()  # shards removed once all is collected


def test_expired_lines_go_into_a_new_batch_and_only_they(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_expire_share=0.3)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(200))
    res = _batch_run(sim, inp, "--batch-size", "100", "--summary-json", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert _lines(out) == Counter({f"r{i}": 1 for i in range(200)})
    assert all(o["error"] is None for o in out)
    assert sim.stats.batch_billed == 200 and sim.stats.requests == 0  # none billed twice
    batches = json.loads((tmp_path / "s.json").read_text())["batches"]
    first, again = [b for b in batches if b["round"] == 1], [b for b in batches if b["round"] == 2]
    assert [b["status"] for b in first] == ["expired", "expired"]
    expired = sum(b["request_counts"]["failed"] for b in first)
    assert 0 < expired < 200 and sum(b["requests"] for b in again) == expired


def test_expired_lines_go_live_with_batch_expired_live(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_expire_share=0.3)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(200))
    res = _batch_run(sim, inp, "--batch-size", "100", "--batch-expired", "live")
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert _lines(out) == Counter({f"r{i}": 1 for i in range(200)})
    st = sim.stats
    assert st.batches_created == 2
    assert st.requests == 200 - st.batch_billed > 0  # exactly the expired ones, live


def test_validation_failure_fails_only_the_lines_it_names(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(strict_models=True)
    rows: list[Any] = plain_records(50)
    rows += [{"custom_id": f"x{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "no-such-model", "messages": [{"role": "user", "content": f"q {i}"}]}}
             for i in range(3)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = _batch_run(sim, inp)
    assert res.exit_code == 1, res.output
    by_id = {o["custom_id"]: o for o in read_results(tmp_path / "in.results.jsonl")}
    assert len(by_id) == 53
    assert all(by_id[f"r{i}"]["error"] is None for i in range(50))
    for i in range(3):
        err = by_id[f"x{i}"]["error"]
        assert err["code"] == "model_not_found" and "no-such-model" in err["message"]


def test_every_line_refused_by_validation_fails_with_the_providers_error(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(fail_batch_validation=True)
    inp = write_jsonl(tmp_path / "in.jsonl", [*plain_records(20), "{bad json"])
    res = _batch_run(sim, inp)
    assert res.exit_code == 1, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 21 and sim.stats.batches_created == 1
    codes = Counter(o["error"]["code"] for o in out)
    assert codes == {"invalid_request": 20, "invalid_input": 1}  # the bad line never went up


def test_user_batch_price_and_unknown_batch_price(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory()
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."sim-small"]\ninput = 2.0\noutput = 4.0\nbatch_input = 1.0\nbatch_output = 2.0\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30))
    res = run([str(inp), "--base-url", sim.url, "--model", "sim-small", "--batch-api", "--prices", str(prices),
               "--quiet"])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    for o in out:
        b = o["batchrun"]
        assert abs(b["cost_usd"] - (b["input_tokens"] * 1.0 + b["output_tokens"] * 2.0) / 1e6) < 1e-12
    # deepseek-chat: the price DB has its live price but no batch price: unknown, never a guess
    res = run([str(inp), "--base-url", sim.url, "--model", "deepseek-chat", "--batch-api", "-o",
               str(tmp_path / "ds.jsonl")])
    assert res.exit_code == 0, res.output
    assert "no Batch API price is known for model 'deepseek-chat'" in res.output
    assert all(o["batchrun"]["cost_usd"] is None for o in read_results(tmp_path / "ds.jsonl"))


def test_a_live_run_refuses_while_batches_run(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=30.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(10))
    res = _batch_run(sim, inp, "--no-wait")
    assert res.exit_code == 75, res.output
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"])
    assert res.exit_code == 2 and "not yet collected" in res.output
    assert sim.stats.requests == 0


def _env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHRUN_", "OPENAI_"))}
    return {**e, "BATCHRUN_API_KEY": KEY, "BATCHRUN_RETRY_BASE": "0.01"}


def _cmd(inp: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url, "--model", "gpt-4o-mini",
            "--batch-api", "--batch-size", "300", "--quiet", *args]


def test_no_wait_under_cron_with_kill9_during_submission(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=0.3)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1000))
    proc = subprocess.Popen(_cmd(inp, sim.url, "--no-wait"), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(2000):  # until the second file is up: submission is under way
        if sim.stats.files_uploaded >= 2 or proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL  # killed mid-submission, not finished
    ckpt = json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())
    assert any(s["batch_id"] is None for s in ckpt["batch"]["shards"])  # some shard not yet submitted
    codes = []
    for _ in range(60):  # cron: run again until it says done (bounded)
        res = subprocess.run(_cmd(inp, sim.url, "--no-wait"), env=_env(), capture_output=True, text=True,
                             timeout=60)
        codes.append(res.returncode)
        if res.returncode != 75:
            break
        time.sleep(0.2)
    assert codes[-1] == 0 and set(codes[:-1]) <= {75}, codes
    assert sim.stats.batches_created == 4
    assert sim.stats.requests == 0
    out = read_results(tmp_path / "in.results.jsonl")
    assert _lines(out) == Counter({f"r{i}": 1 for i in range(1000)})


def test_ctrl_c_while_waiting_leaves_batches_running(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=1.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(400))
    proc = subprocess.Popen(_cmd(inp, sim.url), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for _ in range(2000):
        if sim.stats.batches_created >= 2 or proc.poll() is not None:
            break
        time.sleep(0.005)
    ckpt = tmp_path / "in.results.jsonl.checkpoint"
    for _ in range(2000):  # until the second batch is in the checkpoint: waiting now
        if ckpt.exists() and json.loads(ckpt.read_bytes())["batch"]["shards"][1]["batch_id"]:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    res = subprocess.run(_cmd(inp, sim.url), env=_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert sim.stats.batches_created == 2
    assert _lines(read_results(tmp_path / "in.results.jsonl")) == Counter({f"r{i}": 1 for i in range(400)})


def test_status_shows_each_batch_and_estimate_shows_batch_cost(tmp_path: Path, sim_factory: Any) -> None:
    from typer.testing import CliRunner

    from batchrun.cli import app

    sim = sim_factory(batch_step_s=30.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(500))
    # a stated queue limit: every shard goes at once (with none, batches go in as validation passes)
    assert _batch_run(sim, inp, "--no-wait", "--batch-size", "200", "--batch-queue-tokens", "10000000").exit_code == 75
    res = CliRunner().invoke(app, ["status", str(inp), "--json"])
    st = json.loads(res.output)
    assert [(b["shard"], b["requests"], b["phase"], b["status"]) for b in st["batches"]] == [
        ("s0001", 200, "submitted", "validating"), ("s0002", 200, "submitted", "validating"),
        ("s0003", 100, "submitted", "validating")]
    assert "provider batches are still running" in st["next"]
    plain = CliRunner().invoke(app, ["status", str(inp)]).output
    assert "batch s0002: 200 request(s) to gpt-4o-mini as batch-" in plain
    res = CliRunner().invoke(app, ["estimate", str(inp), "--model", "gpt-4o-mini", "--json"])
    est = json.loads(res.output)
    m = est["models"]["gpt-4o-mini"]
    assert m["batch_price_source"] == "genai-prices (openai, batch)"
    assert abs(m["batch_cost_max_usd"] - m["cost_max_usd"] / 2) < 1e-8  # OpenAI's batch price: half
    assert est["total_batch_cost_max_usd"] == m["batch_cost_max_usd"]


def test_bad_batch_options_and_simulate_no_wait_are_one_sentence_exit_2(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    res = run([str(inp), "--simulate", "--batch-api", "--batch-size", "60000"])
    assert res.exit_code == 2 and "batch-size" in res.output and "50000" in res.output
    res = run([str(inp), "--simulate", "--batch-api", "--batch-expired", "later"])
    assert res.exit_code == 2 and "resubmit or live" in res.output
    res = run([str(inp), "--simulate", "--batch-api", "--no-wait"])
    assert res.exit_code == 2 and "mock-server" in res.output
    assert not (tmp_path / "in.results.jsonl.checkpoint").exists()


def test_a_refused_key_stops_with_exit_3_and_nothing_lost(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(api_key="the-right-key")
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    res = _batch_run(sim, inp)
    assert res.exit_code == 3, res.output
    assert KEY not in res.output and sim.stats.batches_created == 0
    res = _batch_run(sim, inp, env_key="the-right-key")
    assert res.exit_code == 0, res.output
    assert len(read_results(tmp_path / "in.results.jsonl")) == 5


def test_simulate_runs_the_batch_path_in_one_command(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(40))
    res = run([str(inp), "--simulate", "--batch-api", "--batch-size", "15", "--quiet"])
    assert res.exit_code == 0, res.output
    assert _lines(read_results(tmp_path / "in.results.jsonl")) == Counter({f"r{i}": 1 for i in range(40)})


def test_a_live_run_after_shards_were_only_written_drops_the_plan(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(api_key="the-right-key")
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(12))
    assert _batch_run(sim, inp).exit_code == 3  # shards written, the upload refused
    live = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"],
               env={"BATCHRUN_API_KEY": "the-right-key"})
    assert live.exit_code == 0, live.output
    again = _batch_run(sim, inp, env_key="the-right-key")
    assert again.exit_code == 0, again.output
    assert sim.stats.batches_created == 0 and sim.stats.requests == 12
    assert _lines(read_results(tmp_path / "in.results.jsonl")) == Counter({f"r{i}": 1 for i in range(12)})


def test_a_batch_cancelled_at_the_provider_has_its_unanswered_lines_sent_again(tmp_path: Path,
                                                                               sim_factory: Any) -> None:
    import urllib.request

    sim = sim_factory(batch_step_s=0.5)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(60))
    assert _batch_run(sim, inp, "--no-wait", "--batch-size", "30", "--batch-queue-tokens", "100000").exit_code == 75
    first = json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())["batch"]["shards"][0]["batch_id"]
    req = urllib.request.Request(f"{sim.url}/batches/{first}/cancel", method="POST", data=b"",
                                 headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as answer:  # loopback only
        assert json.loads(answer.read())["status"] == "cancelling"
    res = _batch_run(sim, inp, "--batch-size", "30", "--summary-json", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    assert _lines(read_results(tmp_path / "in.results.jsonl")) == Counter({f"r{i}": 1 for i in range(60)})
    batches = json.loads((tmp_path / "s.json").read_text())["batches"]
    assert batches[0]["status"] == "cancelled"
    assert [b["round"] for b in batches] == [1, 1, 2] and batches[2]["requests"] == 30
    assert sim.stats.batch_billed == 60


def test_a_providers_models_go_to_its_own_batches(tmp_path: Path, sim_factory: Any) -> None:
    here, there = sim_factory(), sim_factory(api_key="other-key")
    rows: list[Any] = [*plain_records(5), *({"id": f"o{i}", "text": f"hi {i}", "model": "other/gpt-4o-mini"}
                                            for i in range(3))]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    conf = tmp_path / "batchrun.toml"
    conf.write_text(f'[providers.other]\nbase_url = "{there.url}"\napi_key_env = "OTHER_KEY"\n')
    res = run([str(inp), "--base-url", here.url, "--model", "gpt-4o-mini", "--batch-api", "--config", str(conf),
               "--quiet", "--model-field", "model"], env={"OTHER_KEY": "other-key"})
    assert res.exit_code == 0, res.output
    by_id = {o["custom_id"]: o for o in read_results(tmp_path / "in.results.jsonl")}
    assert len(by_id) == 8 and all(o["error"] is None for o in by_id.values())
    assert {by_id[f"o{i}"]["batchrun"]["model"] for i in range(3)} == {"other/gpt-4o-mini"}
    assert by_id["o0"]["response"]["body"]["model"] == "gpt-4o-mini"  # the provider's own name for it
    assert (here.stats.batches_created, here.stats.batch_billed) == (1, 5)
    assert (there.stats.batches_created, there.stats.batch_billed) == (1, 3)
    assert here.stats.requests == there.stats.requests == 0
    conf.write_text(conf.read_text() + '[route]\nfield = "kind"\nmodels = { a = "other/gpt-4o-mini" }\n')
    res = run([str(inp), "--base-url", here.url, "--model", "gpt-4o-mini", "--batch-api", "--config", str(conf),
               "--fresh"], env={"OTHER_KEY": "other-key"})
    assert res.exit_code == 2 and "[route]" in res.output, res.output


def test_every_endpoint_through_batches_tokens_equal_what_the_server_billed(tmp_path: Path,
                                                                          sim_factory: Any) -> None:
    sim = sim_factory()
    bodies = {"/v1/chat/completions": lambda i: {"model": "gpt-4o-mini",
                                                 "messages": [{"role": "user", "content": f"chat {i}"}]},
              "/v1/embeddings": lambda i: {"model": "text-embedding-3-small", "input": f"embed {i} please"},
              "/v1/completions": lambda i: {"model": "gpt-3.5-turbo-instruct", "prompt": f"complete {i}"},
              "/v1/responses": lambda i: {"model": "gpt-4o-mini", "input": f"respond {i}"}}
    rows = [{"custom_id": f"{url[4:].replace('/', '_')}-{i}", "method": "POST", "url": url, "body": make(i)}
            for url, make in bodies.items() for i in range(10)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = run([str(inp), "--base-url", sim.url, "--batch-api", "--quiet", "--summary-json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert len(out) == 40 and all(o["error"] is None for o in out)
    st = sim.stats
    assert st.requests == 0 and st.batches_created == 4  # one endpoint per batch
    assert sum(o["batchrun"]["input_tokens"] for o in out) == st.batch_prompt_tokens
    assert sum(o["batchrun"]["output_tokens"] for o in out) == st.batch_completion_tokens
    by_kind = {o["custom_id"].split("-")[0]: o for o in out}
    assert by_kind["embeddings"]["batchrun"]["output_tokens"] == 0
    assert by_kind["embeddings"]["response"]["body"]["object"] == "list"
    assert by_kind["responses"]["batchrun"]["input_tokens"] > 0


def test_kill9_while_expired_lines_go_live_then_the_same_command_finishes(tmp_path: Path,
                                                                          sim_factory: Any) -> None:
    sim = sim_factory(batch_expire_share=0.5, latency_ms=50.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(120))
    cmd = _cmd(inp, sim.url, "--batch-expired", "live", "--concurrency", "2")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(4000):  # until some expired lines went live
        if sim.stats.requests >= 10 or proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = read_results(tmp_path / "in.results.jsonl")
    assert _lines(out) == Counter({f"r{i}": 1 for i in range(120)})
    expired = 120 - sim.stats.batch_billed
    assert sim.stats.batches_created == 1
    # at most what was in flight when killed (--concurrency 2) is sent twice
    assert expired <= sim.stats.requests <= expired + 2


def test_a_providers_expired_lines_go_live_to_that_provider(tmp_path: Path, sim_factory: Any) -> None:
    here, there = sim_factory(), sim_factory(batch_expire_share=0.5)
    rows = [{"id": f"o{i}", "text": f"hello {i}", "model": "other/gpt-4o-mini"} for i in range(40)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    conf = tmp_path / "batchrun.toml"
    conf.write_text(f'[providers.other]\nbase_url = "{there.url}"\napi_key_env = "OTHER_KEY"\n')
    res = run([str(inp), "--base-url", here.url, "--batch-api", "--batch-expired", "live", "--config", str(conf),
               "--quiet", "--model-field", "model"], env={"OTHER_KEY": "other-key"})
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert _lines(out) == Counter({f"o{i}": 1 for i in range(40)})
    assert here.stats.requests == 0 and here.stats.batches_created == 0
    assert 0 < there.stats.requests == 40 - there.stats.batch_billed  # the expired ones, live, at `other`


def test_fresh_while_batches_run_is_refused_and_names_them(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=30.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(10))
    assert _batch_run(sim, inp, "--no-wait").exit_code == 75
    res = _batch_run(sim, inp, "--no-wait", "--fresh")
    assert res.exit_code == 2 and "may still be running" in res.output and "pay" in res.output, res.output
    assert sim.stats.batches_created == 1


def test_deleted_shard_files_are_one_sentence_not_a_retry_loop(tmp_path: Path, sim_factory: Any) -> None:
    import shutil

    sim = sim_factory(batch_step_s=30.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(10))
    assert _batch_run(sim, inp, "--no-wait").exit_code == 75
    shutil.rmtree(tmp_path / "in.results.jsonl.batches")
    res = _batch_run(sim, inp, "--no-wait")
    assert res.exit_code == 2 and "shard files" in res.output and "are gone" in res.output, res.output


@pytest.mark.parametrize("flag", [["--no-wait"], ["--batch-size", "10"], ["--batch-expired", "live"]])
def test_batch_settings_without_batch_api_are_refused(tmp_path: Path, flag: list[str]) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    res = run([str(inp), "--simulate", "--quiet", *flag])
    assert res.exit_code == 2 and "needs --batch-api" in res.output
    assert not (tmp_path / "in.results.jsonl").exists()
