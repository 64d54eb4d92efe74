"""Migrating safely, end to end: several providers on 127.0.0.1 (each a real simulator with its
own key), routing, a canary rolled back or promoted, the breaker's failover and the shadow.
Every job is a real `batchrun process` subprocess; figures are counted at the servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import plain_records, read_results, write_jsonl
from .test_resume import env

KEYS = {"OLD_KEY": "old-secret-key-1234", "NEW_KEY": "new-secret-key-5678"}


def toml(tmp: Path, old: str, new: str, extra: str = "") -> Path:
    path = tmp / "batchrun.toml"
    path.write_text(f"""
[providers.old]
base_url = "{old}"
api_key_env = "OLD_KEY"
[providers.new]
base_url = "{new}"
api_key_env = "NEW_KEY"
{extra}
""")
    return path


def batchrun(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batchrun", *args], env=env(**KEYS),
                          capture_output=True, text=True, timeout=timeout)


def process(tmp: Path, inp: Path, cfg: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    summary = tmp / "summary.json"
    done = batchrun(["process", str(inp), "--config", str(cfg), "--model", "old/gpt-4o-mini", "--quiet",
                     "--summary-json", str(summary), *extra])
    for secret in KEYS.values():
        assert secret not in done.stdout + done.stderr
    return done, json.loads(summary.read_text()) if summary.exists() else {}


def once_each(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = read_results(out)
    assert sorted(r["custom_id"] for r in results) == sorted(str(r["id"]) for r in rows)
    return results


def test_a_canary_failing_a_quarter_of_requests_is_rolled_back_and_every_record_succeeds(
    tmp_path: Path, sim_factory
) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=5)
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=5, error_rate=0.25, error_kinds=("500",), seed=3)
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\nwindow = 50\n')
    rows = plain_records(400)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, summ = process(tmp_path, inp, cfg)
    assert done.returncode == 0, done.stderr
    assert new.stats.requests <= 150  # counted at the canary's server
    c = summ["canary"]
    assert c["state"] == "rolled_back" and "error rate" in c["reason"] and c["changed_at"] > 0
    assert c["canary"]["failed"] > 0 and c["baseline"]["failed"] == 0
    results = once_each(tmp_path / "in.results.jsonl", rows)
    assert all(r["error"] is None for r in results)
    canary = [r for r in results if r["batchrun"]["route"] == "canary"]
    assert canary and all(r["batchrun"]["provider"] in ("old", "new") for r in results)
    rescued = [r for r in canary if r["batchrun"].get("fallbacks")]
    assert rescued and all(r["batchrun"]["model"] == "old/gpt-4o-mini" for r in rescued)
    assert "rolled_back" in done.stdout and "baseline" in done.stdout  # the side-by-side table


def test_a_healthy_canary_with_a_ramp_takes_over_the_job(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=5)
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=5)
    cfg = toml(tmp_path, old.url, new.url,
               '[canary]\nmodel = "new/deepseek-chat"\nramp = [0.1, 0.5, 1.0]\nwindow = 20\n')
    rows = plain_records(400)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, summ = process(tmp_path, inp, cfg, "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    assert summ["canary"]["state"] == "promoted" and summ["canary"]["share"] == 1.0
    results = once_each(tmp_path / "in.results.jsonl", rows)
    by_line = sorted(results, key=lambda r: r["batchrun"]["line"])
    assert all(r["batchrun"]["route"] == "canary" for r in by_line[-100:])  # taken over by the end
    assert new.stats.requests > old.stats.requests


def test_a_provider_answering_503_is_cut_off_by_its_breaker_and_records_fail_over(
    tmp_path: Path, sim_factory
) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], error_rate=1.0, error_kinds=("503",))
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=5)
    cfg = toml(tmp_path, old.url, new.url)
    rows = plain_records(400)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, summ = process(tmp_path, inp, cfg, "--fallback-model", "new/deepseek-chat")
    assert done.returncode == 0, done.stderr
    assert old.stats.requests <= 150
    results = once_each(tmp_path / "in.results.jsonl", rows)
    assert all(r["error"] is None and r["batchrun"]["provider"] == "new" for r in results)
    assert summ["providers"]["new"]["succeeded"] == 400


def test_shadow_agreement_is_the_true_share_of_equal_answers(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=2)
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=2, differ_share=0.3)
    cfg = toml(tmp_path, old.url, new.url, '[shadow]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    rows = plain_records(300)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, summ = process(tmp_path, inp, cfg)
    assert done.returncode == 0, done.stderr
    main = {r["custom_id"]: r for r in once_each(tmp_path / "in.results.jsonl", rows)}
    assert all(r["batchrun"]["route"] != "shadow" for r in main.values())
    shadow = read_results(tmp_path / "in.results.shadow.jsonl")
    assert 100 < len(shadow) < 200  # about half, the same half on every run

    def text(r: dict[str, Any]) -> str:
        return str(r["response"]["body"]["choices"][0]["message"]["content"]).strip().casefold()

    equal = [text(s) == text(main[s["custom_id"]]) for s in shadow]
    assert 0 < sum(equal) < len(equal)
    assert summ["shadow"]["compared"] == len(shadow)
    assert summ["shadow"]["agreement"] == round(sum(equal) / len(equal), 6)
    assert summ["shadow"]["cost_usd"] > 0 and "shadow" in done.stdout


def test_records_are_routed_by_field_and_by_length_and_say_why(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"])
    new = sim_factory(api_key=KEYS["NEW_KEY"])
    cfg = toml(tmp_path, old.url, new.url, """
[route]
field = "task"
models = { chat = "new/deepseek-chat" }
long = { over_tokens = 200, model = "old/gpt-4.1-mini" }
""")
    rows = [{"id": "a", "text": "hi", "task": "chat"}, {"id": "b", "text": "hi", "task": "other"},
            {"id": "c", "text": "word " * 400, "task": "chat"}, {"id": "d", "text": "hi", "model": "old/sim-small"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, _ = process(tmp_path, inp, cfg, "--model-field", "model")
    assert done.returncode == 0, done.stderr
    got = {r["custom_id"]: (r["batchrun"]["model"], r["batchrun"]["route"]) for r in read_results(
        tmp_path / "in.results.jsonl")}
    assert got == {"a": ("new/deepseek-chat", "route:task=chat"), "b": ("old/gpt-4o-mini", "default"),
                   "c": ("old/gpt-4.1-mini", "route:long"), "d": ("old/sim-small", "record")}


def test_a_kill_9_in_the_middle_of_a_rollback_resumes_with_the_rollback_held(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=20)
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=20, error_rate=1.0, error_kinds=("500",))
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    rows = plain_records(160)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out, checkpoint = tmp_path / "in.results.jsonl", tmp_path / "in.results.jsonl.checkpoint"
    args = ["process", str(inp), "--config", str(cfg), "--model", "old/gpt-4o-mini", "--quiet", "--concurrency", "4"]
    proc = subprocess.Popen([sys.executable, "-m", "batchrun", *args], env=env(**KEYS),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while b"rolled_back" not in (checkpoint.read_bytes() if checkpoint.exists() else b""):
        assert proc.poll() is None and time.monotonic() < deadline, "no rollback was checkpointed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    canary_requests = new.stats.requests
    assert len(read_results(out)) < 160
    status = json.loads(batchrun(["status", str(inp), "--json"]).stdout)
    assert status["canary"]["state"] == "rolled_back" and status["canary"]["at"] > 0
    done, summ = process(tmp_path, inp, cfg, "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    assert new.stats.requests == canary_requests  # the rollback held: no canary traffic after it
    assert summ["canary"]["state"] == "rolled_back" and summ["canary"]["reason"]
    assert all(r["error"] is None for r in once_each(out, rows))


@pytest.mark.parametrize(("extra", "names"), [
    ('[route]\nfield = "t"\nmodels = { a = "newx/m" }\n', ["[route]", "newx"]),
    ('[canary]\nmodel = "new/m"\nshare = 1.5\n', ["[canary]", "share"]),
    ('[canary]\nmodel = "new/m"\nramp = [0.5, 0.2]\n', ["[canary]", "ramp"]),
    ('[shadow]\nmodel = "new/m"\nshare = -1\n', ["[shadow]", "share"]),
    ('[providers.x]\nbase_url = "ftp://h"\n', ["[providers.x]", "base_url"]),
    ('[canry]\nmodel = "new/m"\n', ["[canry]"]),
])
def test_bad_routing_config_is_one_sentence_naming_the_table_and_key(
    tmp_path: Path, extra: str, names: list[str]
) -> None:
    cfg = toml(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", extra)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    done, _ = process(tmp_path, inp, cfg)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert all(n in done.stderr for n in names), done.stderr
    assert not (tmp_path / "in.results.jsonl").exists()


def test_an_unset_provider_key_is_named_and_a_missing_route_field_is_a_warning(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"])
    cfg = toml(tmp_path, "https://api.example.com/v1", old.url)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    no_key = subprocess.run([sys.executable, "-m", "batchrun", "process", str(inp), "--config", str(cfg),
                             "--model", "old/m"], env=env(), capture_output=True, text=True, timeout=60)
    assert no_key.returncode == 2 and "[providers.old] api_key_env: OLD_KEY is not set" in no_key.stderr
    cfg = toml(tmp_path, old.url, old.url, '[route]\nfield = "task_typ"\nmodels = { a = "new/m" }\n')
    done, _ = process(tmp_path, inp, cfg)
    assert done.returncode == 0, done.stderr
    assert "[route] field 'task_typ'" in done.stderr


def test_providers_health_check_for_cron(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"])
    new = sim_factory(api_key="another-key")
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.1\n')
    bad = batchrun(["providers", "--config", str(cfg), "--model", "old/no-such-model", "--json"])
    assert bad.returncode == 1, bad.stderr
    rows = {r["provider"]: r for r in json.loads(bad.stdout)}
    assert rows["old"]["key_accepted"] is True and rows["old"]["missing_models"] == ["no-such-model"]
    assert rows["new"]["key_accepted"] is False and not rows["new"]["healthy"]
    new.close()
    cfg = toml(tmp_path, old.url, "http://127.0.0.1:9/v1")
    down = batchrun(["providers", "--config", str(cfg), "--json"])
    assert down.returncode == 1 and json.loads(down.stdout)[1]["reachable"] is False
    cfg = toml(tmp_path, old.url, old.url.replace("/v1", "") + "/v1")
    good = batchrun(["providers", "--config", str(cfg), "--model", "old/gpt-4o-mini"])
    assert good.returncode == 1  # new/ is the same server, but NEW_KEY is not its key
    for secret in KEYS.values():
        assert secret not in good.stdout + good.stderr + bad.stdout + down.stdout


def test_shadow_cost_counts_against_max_cost(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"])
    new = sim_factory(api_key=KEYS["NEW_KEY"])
    cfg = toml(tmp_path, old.url, new.url, '[shadow]\nmodel = "new/gpt-4o-mini"\nshare = 1.0\n')
    rows = plain_records(200)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, summ = process(tmp_path, inp, cfg, "--max-cost", "0.004", "--concurrency", "4")
    assert done.returncode == 3, done.stderr  # stopped by the budget, resumable
    spent = summ["total_cost_usd"]  # everything billed: the shadow's answers included
    assert summ["cost_split_usd"]["shadow"] == summ["shadow"]["cost_usd"]
    assert spent <= 0.004 and summ["shadow"]["cost_usd"] > 0.4 * spent
    assert summ["records"]["succeeded"] < 200


def test_estimate_routes_and_prices_provider_models(tmp_path: Path) -> None:
    cfg = toml(tmp_path, "https://api.openai.com/v1", "https://api.deepseek.com/v1",
               '[route]\nfield = "task"\nmodels = { chat = "new/deepseek-chat" }\n')
    rows = [{"id": str(i), "text": "hello there", "task": "chat" if i % 2 else "other"} for i in range(10)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done = batchrun(["estimate", str(inp), "--config", str(cfg), "--model", "old/gpt-4o-mini", "--json"])
    assert done.returncode == 0, done.stderr
    models = json.loads(done.stdout)["models"]
    assert {m: models[m]["records"] for m in models} == {"new/deepseek-chat": 5, "old/gpt-4o-mini": 5}
    assert all(models[m]["cost_max_usd"] for m in models)  # priced from each provider's own list


def test_a_dead_shadow_neither_slows_the_job_nor_goes_unsaid(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=2)
    cfg = toml(tmp_path, old.url, "http://127.0.0.1:9/v1", '[shadow]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    rows = plain_records(200)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    done, summ = process(tmp_path, inp, cfg)
    assert done.returncode == 0, done.stderr
    assert summ["shadow"]["compared"] == 0 and "shadow new/deepseek-chat" in done.stderr
    assert all(r["error"] is None for r in once_each(tmp_path / "in.results.jsonl", rows))


def test_a_refused_key_names_its_provider_and_variable_and_a_refused_canary_only_rolls_back(
    tmp_path: Path, sim_factory
) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"])
    new = sim_factory(api_key="not-the-new-key")
    rows = plain_records(60)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    done, summ = process(tmp_path, inp, cfg)
    assert done.returncode == 0, done.stderr
    assert summ["canary"]["state"] == "rolled_back" and "refused" in summ["canary"]["reason"]
    assert all(r["error"] is None for r in once_each(tmp_path / "in.results.jsonl", rows))
    stopped, _ = process(tmp_path, inp, cfg, "--model", "new/deepseek-chat", "--fresh")
    assert stopped.returncode == 3
    assert "provider 'new' refused the key read from NEW_KEY" in stopped.stderr, stopped.stderr


def test_a_named_loopback_key_variable_that_is_unset_is_refused(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"])
    cfg = toml(tmp_path, old.url, old.url)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    done = subprocess.run([sys.executable, "-m", "batchrun", "process", str(inp), "--config", str(cfg),
                           "--model", "new/m"], env=env(OLD_KEY=KEYS["OLD_KEY"]), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "NEW_KEY is not set" in done.stderr, done.stderr
