"""Flex processing as `--deadline`'s third path, against the simulator on 127.0.0.1: a provider
configured `flex = true` gets `service_tier: "flex"` for the records the plan sends live, each
priced at the model's flex price; a flex that turns out too slow gives way to the standard tier
in time; every record is answered once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchrun.account.flex import flex_price
from batchrun.account.pricing import PriceBook
from batchrun.errors import ConfigError
from batchrun.records import Usage
from batchrun.route.providers import parse_providers

from .conftest import plain_records, read_results, write_jsonl
from .test_deadline_run import _once
from .test_process import run


def _flex_job(tmp_path: Path, sim: Any, n: int, deadline: str) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    conf = tmp_path / "batchrun.toml"
    conf.write_text(f'[providers.fx]\nbase_url = "{sim.url}"\napi_key_env = "FX_KEY"\nflex = true\n'
                    "flex_wait_s = 1\n")  # the simulator's flex answers within a second
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(n))
    res = run([str(inp), "--config", str(conf), "--model", "fx/gpt-5-mini", "--deadline", deadline, "--rpm", "1200",
               "--summary-json", str(tmp_path / "s.json")], env={"FX_KEY": "sk-fx"})
    assert res.exit_code == 0, res.output
    out = read_results(tmp_path / "in.results.jsonl")
    assert _once(out, n) and all(o["error"] is None for o in out)
    assert sim.stats.billed + sim.stats.batch_billed == n  # no record answered twice, on any path
    return res, json.loads((tmp_path / "s.json").read_text())["deadline"], out


def _at_flex(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in out if (o["response"] or {}).get("body", {}).get("service_tier") == "flex"]


def test_live_records_go_at_flex_priced_at_the_flex_price(tmp_path: Path, sim_factory: Any) -> None:
    # batches slow (4 lines a second): the plan sends a share live, and flex is offered and cheaper
    sim = sim_factory(rpm=1200, batch_lines_per_s=4.0, batch_step_s=0.05, flex_latency_ms=30.0,
                      flex_unavailable_share=0.2, seed=3)
    res, d, out = _flex_job(tmp_path, sim, 50, "6s")
    flex = _at_flex(out)
    assert d["flex"] == len(flex) == sim.stats.flex_billed > 0 and d["met"]
    assert sim.stats.statuses[429] > 0  # "Resource Unavailable": waited and sent again, no record failed
    book = PriceBook(provider_urls={"fx": sim.url})
    price = flex_price(book, "fx/gpt-5-mini")
    assert price is not None and "flex" in price.source
    for o in flex:  # each at the flex price (genai-prices' service_tier flex), below the standard one
        b = o["batchrun"]
        usage = Usage(b["input_tokens"], b["output_tokens"])
        assert b["cost_usd"] == pytest.approx(price.cost(usage))
        assert b["cost_usd"] < book.cost("fx/gpt-5-mini", usage)
    assert f"live ({len(flex)} at flex)" in res.output


def test_a_flex_too_slow_for_the_deadline_gives_way_to_the_standard_tier(tmp_path: Path, sim_factory: Any) -> None:
    # flex has no capacity for nearly every request ("Resource Unavailable"): too slow for the
    # deadline; the watch stops it, the standard tier takes the rest over in time
    sim = sim_factory(rpm=1200, batch_lines_per_s=4.0, batch_step_s=0.05, flex_latency_ms=30.0,
                      flex_unavailable_share=0.97, seed=5)
    res, d, out = _flex_job(tmp_path, sim, 80, "10s")
    assert "flex gave way on shard" in res.output and d["met"]
    assert d["flex"] == len(_at_flex(out)) == sim.stats.flex_billed  # none came back: all went standard
    ckpt = json.loads((tmp_path / "in.results.jsonl.checkpoint").read_bytes())
    assert ckpt["deadline"]["flex_cut"]


def test_flex_is_a_provider_setting_that_is_true_or_false() -> None:
    (p,) = parse_providers({"fx": {"base_url": "http://127.0.0.1:9/v1", "flex": True}}, {}, "t.toml")
    assert p.flex
    with pytest.raises(ConfigError, match="flex must be true or false"):
        parse_providers({"fx": {"base_url": "http://127.0.0.1:9/v1", "flex": "yes"}}, {}, "t.toml")


def test_a_provider_shard_sent_live_instead_of_into_a_batch_goes_to_that_provider(
        tmp_path: Path, sim_factory: Any) -> None:
    # a 6 s deadline holds a shard back from the start: its lines, written for the provider's
    # Batch API, name the bare model; sent live they must still go to the provider (here the
    # only server: the default endpoint is not set), never to the default endpoint
    sim = sim_factory(rpm=1200, batch_lines_per_s=4.0, batch_step_s=0.05)
    conf = tmp_path / "batchrun.toml"
    conf.write_text(f'[providers.fx]\nbase_url = "{sim.url}"\napi_key_env = "FX_KEY"\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(50))
    res = run([str(inp), "--config", str(conf), "--model", "fx/gpt-5-mini", "--deadline", "6s", "--rpm", "1200"],
              env={"FX_KEY": "sk-fx"})
    assert res.exit_code == 0, res.output
    assert "goes live instead of into a batch" in res.output
    assert _once(read_results(tmp_path / "in.results.jsonl"), 50)
    assert sim.stats.billed + sim.stats.batch_billed == 50
