"""Behind a real gateway (issue 20): LiteLLM's proxy on 127.0.0.1 in front of simulators, the
way a team migrates. Marked `gateway`: not in the default run; `python -m pytest -m gateway -n 0
tests/test_gateway.py` runs it (skipped, saying why, when LiteLLM is not installed). Every figure
is counted at the upstream simulators, behind the gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.sim.config import SimConfig

from .conftest import SimThread, plain_records, read_results, write_jsonl
from .litellm_proxy import GATEWAY_KEY, Gateway, free_port, litellm_binary, litellm_proxy
from .test_process import KEY, run

pytestmark = pytest.mark.gateway

# alias at the gateway -> (the upstream simulator's config, the upstream model)
UPSTREAMS: dict[str, tuple[SimConfig, str]] = {
    "old-model": (SimConfig(), "gpt-4o-mini"),
    "new-model": (SimConfig(error_rate=0.12, error_kinds=("500",), seed=12), "deepseek-chat"),
    "empty-model": (SimConfig(quota=0), "gpt-4o-mini"),
    "lim-model": (SimConfig(rpm=30, window="minute", headers=False, retry_after="seconds"), "gpt-4o-mini"),
    "bare-model": (SimConfig(rpm=30, window="minute", headers=False, retry_after="none"), "gpt-4o-mini"),
    "house-model": (SimConfig(), "gpt-4o-mini"),  # an alias no price list knows
    "batch-old": (SimConfig(batch_step_s=0.05), "gpt-4o-mini"),
    "batch-new": (SimConfig(batch_step_s=0.05), "deepseek-chat"),
}


class Tier:
    def __init__(self, gw: Gateway, sims: dict[str, SimThread]) -> None:
        self.gw, self.sims = gw, sims

    def toml(self, tmp: Path, extra: str = "") -> Path:
        path = tmp / "batchrun.toml"
        path.write_text(f'[providers.gw]\nbase_url = "{self.gw.url}"\napi_key_env = "GW_KEY"\n{extra}')
        return path

    def process(self, tmp: Path, inp: Path, *args: str, key: str = GATEWAY_KEY,
                extra: str = "") -> tuple[Any, dict[str, Any]]:
        summary = tmp / "summary.json"
        res = run([str(inp), "--config", str(self.toml(tmp, extra)), "--summary-json", str(summary), *args],
                  env={"GW_KEY": key})
        assert key not in res.output
        return res, json.loads(summary.read_text()) if summary.exists() else {}


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    binary = litellm_binary()
    if binary is None:
        pytest.skip("LiteLLM's proxy is not installed (pip install 'litellm[proxy]==1.108.7' into its own "
                    "venv, or set BATCHRUN_LITELLM to its litellm executable)")
    sims = {alias: SimThread(cfg) for alias, (cfg, _) in UPSTREAMS.items()}
    try:
        routes = {alias: (sims[alias].url, model) for alias, (_, model) in UPSTREAMS.items()}
        routes["down-model"] = (f"http://127.0.0.1:{free_port()}/v1", "gpt-4o-mini")  # nothing listens
        with litellm_proxy(binary, routes, tmp_path_factory.mktemp("litellm")) as gw:
            yield Tier(gw, sims)
    finally:
        for s in sims.values():
            s.close()


def test_1_canary_judged_on_the_upstreams_errors(tier: Tier, tmp_path: Path) -> None:
    """12 % upstream errors, max_error_rate 0.05: rolled back, at most 400 canary requests."""
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(800))
    res, summ = tier.process(tmp_path, inp, "--model", "gw/old-model", "--quiet", "--concurrency", "16",
                             extra='[canary]\nmodel = "gw/new-model"\nshare = 0.3\nwindow = 50\n'
                                   "max_error_rate = 0.05\n")
    assert res.exit_code == 0, res.output
    print(f"canary: {summ['canary']['state']}, upstream requests {tier.sims['new-model'].stats.requests}")
    assert summ["canary"]["state"] == "rolled_back", summ["canary"]
    assert tier.sims["new-model"].stats.requests <= 400
    assert len(read_results(tmp_path / "in.results.jsonl")) == 800


def test_1b_a_gateway_left_to_retry_still_shows_the_canary_its_failures(tier: Tier, tmp_path: Path) -> None:
    """The user keeps LiteLLM's retries (`num_retries = 2` in the provider's extra_body): each
    answer's x-litellm-attempted-retries is judged as the canary's failures; it still rolls back."""
    before = tier.sims["new-model"].stats.requests
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(800))
    res, summ = tier.process(tmp_path, inp, "--model", "gw/old-model", "--quiet", "--concurrency", "16",
                             extra='extra_body = { num_retries = 2 }\n[canary]\nmodel = "gw/new-model"\n'
                                   "share = 0.3\nwindow = 50\nmax_error_rate = 0.05\n")
    assert res.exit_code == 0, res.output
    sent = tier.sims["new-model"].stats.requests - before
    print(f"canary behind a retrying gateway: {summ['canary']['state']}, upstream requests {sent}")
    assert summ["canary"]["state"] == "rolled_back", summ["canary"]
    assert sent <= 400
    assert len(read_results(tmp_path / "in.results.jsonl")) == 800


def test_2_an_empty_upstream_account_stops_with_exit_3(tier: Tier, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(300))
    res, _ = tier.process(tmp_path, inp, "--model", "gw/empty-model", "--concurrency", "16")
    print(f"quota: exit {res.exit_code}, upstream requests {tier.sims['empty-model'].stats.requests}")
    assert res.exit_code == 3, res.output
    assert "out of quota" in res.output
    assert tier.sims["empty-model"].stats.requests <= 100
    assert read_results(tmp_path / "in.results.jsonl") == []


@pytest.mark.timeout(300)
def test_3_4_a_per_minute_limit_behind_the_gateway(tier: Tier, tmp_path: Path, sim_factory) -> None:
    """A calendar-minute limit (LiteLLM's own kind) and no upstream headers: 429s within 2x of the
    same job sent directly; none billed twice with the default --timeout. Slow: a minute or two."""
    rows = plain_records(40)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res, _ = tier.process(tmp_path, inp, "--model", "gw/lim-model", "--quiet", "--concurrency", "16")
    assert res.exit_code == 0, res.output
    up = tier.sims["lim-model"].stats
    assert max(up.billed_by_prompt.values()) == 1 and up.billed == 40
    direct = sim_factory(rpm=30, window="minute", headers=False, retry_after="seconds")
    (tmp_path / "d").mkdir()
    d_inp = write_jsonl(tmp_path / "d" / "in.jsonl", rows)
    d = run([str(d_inp), "--base-url", direct.url, "--model", "gpt-4o-mini", "--quiet", "--concurrency", "16"])
    assert d.exit_code == 0, d.output
    print(f"upstream 429s through the gateway {up.rate_limited}, direct {direct.stats.rate_limited}")
    assert up.rate_limited <= 2 * max(direct.stats.rate_limited, 1)
    assert max(direct.stats.billed_by_prompt.values()) == 1


@pytest.mark.timeout(300)
def test_3_4_bare_429s_of_a_per_minute_limit_behind_the_gateway(tier: Tier, tmp_path: Path, sim_factory) -> None:
    """The same calendar-minute limit, its 429s saying nothing at all (no retry-after, no rate
    headers): batchrun probes after short pauses, and a probe's 429 comes back slower through
    the gateway. The job goes through the gateway while the same job goes straight to a twin of
    the upstream, in the same calendar minute (both spend it, both wait for the next): 429s
    within 1.3x (the floor is 2x), none billed twice. Slow: up to a minute and a quarter."""
    rows = plain_records(40)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    direct = sim_factory(rpm=30, window="minute", headers=False, retry_after="none")
    (tmp_path / "d").mkdir()
    d_inp = write_jsonl(tmp_path / "d" / "in.jsonl", rows)
    second = time.time() % 60
    if second > 40:  # a wall-clock alignment, not a synchronisation: both jobs start in one minute
        time.sleep(60.5 - second)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHRUN_", "OPENAI_"))}
    d = subprocess.Popen([sys.executable, "-m", "batchrun", "process", str(d_inp), "--base-url", direct.url,
                          "--model", "gpt-4o-mini", "--quiet", "--concurrency", "16"],
                         env={**env, "BATCHRUN_API_KEY": KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    res, _ = tier.process(tmp_path, inp, "--model", "gw/bare-model", "--quiet", "--concurrency", "16")
    _, err = d.communicate(timeout=240)
    assert res.exit_code == 0, res.output
    assert d.returncode == 0, err
    up, straight = tier.sims["bare-model"].stats, direct.stats
    print(f"bare 429s: upstream 429s through the gateway {up.rate_limited}, direct {straight.rate_limited}")
    assert up.billed == 40 and max(up.billed_by_prompt.values()) == 1
    assert straight.billed == 40 and max(straight.billed_by_prompt.values()) == 1
    assert up.rate_limited <= 1.3 * max(straight.rate_limited, 1)


def test_5_error_shapes(tier: Tier, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(40))
    typo, _ = tier.process(tmp_path, inp, "--model", "gw/old-modell")
    assert typo.exit_code == 2 and "does not serve the model 'gw/old-modell'" in typo.output, typo.output
    assert not (tmp_path / "in.results.jsonl").exists()  # nothing written: the job is forgotten
    fell, summ = tier.process(tmp_path, inp, "--model", "gw/old-modell", "--fallback-model", "gw/old-model",
                              "--quiet", "--fresh")
    assert fell.exit_code == 0, fell.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert all(o["batchrun"]["fallbacks"][0]["reason"] == "model_not_found" for o in out)
    wrong, _ = tier.process(tmp_path, inp, "--model", "gw/old-model", "--fresh", key="sk-not-the-gateways")
    assert wrong.exit_code == 3, wrong.output
    assert "GW_KEY" in wrong.output and read_results(tmp_path / "in.results.jsonl") == []


def test_7_request_ids_and_prices_from_what_the_gateway_states(tier: Tier, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(100))
    res, summ = tier.process(tmp_path, inp, "--model", "gw/house-model", "--quiet")
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    print(f"request ids: {sum(bool(o['response']['request_id']) for o in out)} of {len(out)}")
    assert sum(bool(o["response"]["request_id"]) for o in out) >= 99
    costs = [o["batchrun"]["cost_usd"] for o in out]
    assert all(c is not None and c > 0 for c in costs)  # gpt-4o-mini's price, upstream of the alias
    assert summ["total_cost_usd"] == pytest.approx(sum(costs))


def test_6_batches_reach_the_upstream_of_their_model(tier: Tier, tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"ticket {i}", "model": "gw/batch-new" if i % 2 else "gw/batch-old"}
            for i in range(20)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res, _ = tier.process(tmp_path, inp, "--model", "gw/batch-old", "--model-field", "model", "--batch-api")
    assert res.exit_code == 0, res.output
    new, old = tier.sims["batch-new"].stats, tier.sims["batch-old"].stats
    assert new.batches_created == 1 and old.batches_created == 1  # one shard per model, each at its own
    assert new.batch_billed == 10 and old.batch_billed == 10
    assert len(read_results(tmp_path / "in.results.jsonl")) == 20


def test_7_providers_is_not_healthy_while_an_upstream_is_down(tier: Tier, tmp_path: Path) -> None:
    cfg = tier.toml(tmp_path)
    res = CliRunner().invoke(app, ["providers", "--config", str(cfg), "--model", "gw/down-model", "--json"],
                             env={"GW_KEY": GATEWAY_KEY})
    row = {r["provider"]: r for r in json.loads(res.output)}["gw"]
    assert row["key_accepted"] is True and row["healthy"] is False, row
    assert "down-model" in row["problem"]
    ok = CliRunner().invoke(app, ["providers", "--config", str(cfg), "--model", "gw/old-model", "--json"],
                            env={"GW_KEY": GATEWAY_KEY})
    assert {r["provider"]: r for r in json.loads(ok.output)}["gw"]["healthy"] is True, ok.output
