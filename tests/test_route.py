"""Routing decisions as pure logic: the canary's judge, the breaker's circuits, names of models,
the shadow's agreement rule and the tables' checks. Time is a variable; nothing sleeps."""

from __future__ import annotations

import random

import pytest

from batchrun.errors import ConfigError
from batchrun.records import Record
from batchrun.route.canary import PROMOTED, ROLLED_BACK, RUNNING, Canary, CanaryConfig, key_point, parse_canary
from batchrun.route.plan import Planner
from batchrun.route.providers import Targets, parse_providers
from batchrun.route.routes import Router, parse_route
from batchrun.route.shadow import agree
from batchrun.route.tables import parse_routing
from batchrun.send.breaker import COOL_DOWN_S, DOWN_AFTER_FAILURES, DOWN_AFTER_S, OPEN_AFTER_FAILURES, Breaker


def canary(**kw: object) -> Canary:
    return Canary(CanaryConfig(**{"model": "new/m", "share": 0.2, **kw}), clock=lambda: 1000.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_a_quarter_failing_is_rolled_back_well_within_150_answers(seed: int) -> None:
    rng = random.Random(seed)
    c = canary(window=50)
    n = next((i for i in range(1, 151) if c.observe(rng.random() >= 0.25, 40.0)), None)
    assert n is not None
    assert c.state == ROLLED_BACK and n <= 60 and c.changed_at == 1000.0 and c.records_at_change == n
    assert not c.takes("anything") and not c.observe(False, 1.0)  # nothing more is judged or sent


def test_a_window_within_its_error_budget_passes_and_ramps_up_to_promotion() -> None:
    c = canary(share=0.1, ramp=(0.1, 0.5, 1.0), window=20)
    pattern = [False] + [True] * 19  # one failure in 20: 5 %, not over 0.05 x 20
    for step in (0.5, 1.0):
        assert [c.observe(ok, 10.0) for ok in pattern][-1] is True
        assert c.share == step
    assert c.state == PROMOTED and c.takes("any key") and "ramp reached 1.0" in (c.reason or "")
    saved = Canary.from_state(c.config, lambda: 0.0, c.to_state()).to_state()  # the steps hold on resume
    assert saved["steps"] == [[1000.0, 0.5], [1000.0, 1.0]] and saved["threshold"] == "ramp"
    assert saved["thresholds"] == {"window": 20, "max_error_rate": 0.05, "min_success_rate": 0.95,
                                   "max_p95_ms": 0.0, "max_consecutive_failures": 5}


def test_failures_in_a_row_and_a_slow_p95_each_roll_back() -> None:
    c = canary(max_consecutive_failures=3, max_error_rate=1.0, min_success_rate=0.0)
    assert [c.observe(False, 0.0) for _ in range(3)] == [False, False, True]
    assert "3 failures in a row" in (c.reason or "") and c.threshold == "max_consecutive_failures"
    assert c.to_state()["steps"] == [[1000.0, 0.0]]  # the rollback, at its time
    c = canary(window=10, max_p95_ms=500)
    for _ in range(9):
        c.observe(True, 900.0)
    assert c.state == RUNNING and c.observe(True, 900.0) and c.state == ROLLED_BACK
    assert "p95 latency" in (c.reason or "") and c.threshold == "max_p95_ms"


def test_the_split_is_stable_growing_and_about_the_share() -> None:
    keys = [f"rec-{i}" for i in range(10_000)]
    small = {k for k in keys if key_point(k) < 0.15}
    large = {k for k in keys if key_point(k) < 0.5}
    assert small <= large and 1300 < len(small) < 1700
    assert key_point("rec-1") == key_point("rec-1") != key_point("rec-1", b"shadow")


def test_a_saved_canary_holds_and_a_changed_model_starts_fresh() -> None:
    c = canary()
    for _ in range(5):
        c.observe(False, 0.0)
    saved = c.to_state()
    back = Canary.from_state(c.config, lambda: 0.0, saved)
    assert back.state == ROLLED_BACK and back.reason == c.reason and back.changed_at == 1000.0
    other = CanaryConfig("new/other", 0.2)
    assert Canary.from_state(other, lambda: 0.0, saved).state == RUNNING


def rec(key: str, model: str = "base", tokens: int = 10, value: str | None = None, own: bool = False) -> Record:
    return Record(key, 1, model, {"model": model}, tokens, 5, route_value=value, own_model=own)


def test_the_plan_puts_the_canary_first_with_the_baseline_as_its_rescue() -> None:
    route = parse_route({"field": "task", "models": {"chat": "p/chat"}, "long": {"over_tokens": 100,
                                                                               "model": "p/long"}}, "t")
    changes: list[int] = []
    planner = Planner(Router(route, "base"), canary(share=1.0, ramp=()), ["fb"], lambda: changes.append(1))
    assert planner.plan(rec("k", value="chat")).chain == ("new/m", "p/chat", "fb")
    planner.canary = None
    assert planner.plan(rec("k", tokens=500, value="chat")).route == "route:long"
    assert planner.plan(rec("k", value="chat")).route == "route:task=chat"
    assert planner.plan(rec("k", value="other")).route == "default"
    assert planner.plan(rec("k", model="mine", own=True)).chain == ("mine", "fb")


def test_a_provider_never_reached_is_down_at_once_one_that_answered_only_after_failures_and_time() -> None:
    now = [0.0]
    b = Breaker(clock=lambda: now[0])
    assert not b.down("m", "p")
    b.failed("m", "p")  # a one-record job's only record gave up on a provider it never reached
    assert b.down("m", "p") and not b.down("m", "other")
    b.failed("m", "q", reached=True)  # a 5xx: the server is there; the record may be its own trouble
    assert not b.down("m", "q")
    b.answered("m", "p")
    for _ in range(DOWN_AFTER_FAILURES):
        b.failed("m", "p")
    assert not b.down("m", "p")  # it answered lately: a blip, or the record's own failure
    now[0] += DOWN_AFTER_S
    assert b.down("m", "p")


def test_a_circuit_opens_lets_one_probe_through_after_its_cool_down_and_closes_on_an_answer() -> None:
    now = [0.0]
    b = Breaker(clock=lambda: now[0])
    for _ in range(OPEN_AFTER_FAILURES - 1):
        b.failed("m", "p")
    assert b.allow("m", "p") and not b.is_open("m", "p")
    b.failed("m", "p")
    assert b.is_open("m", "p") and not b.allow("m", "p") and b.allow("other", "p")
    now[0] += COOL_DOWN_S
    assert b.allow("m", "p") and not b.allow("m", "p")  # one probe at a time
    b.failed("m", "p")  # the probe failed: open for twice as long
    now[0] += COOL_DOWN_S
    assert not b.allow("m", "p")
    now[0] += COOL_DOWN_S
    assert b.allow("m", "p")
    b.answered("m", "p")
    assert not b.is_open("m", "p") and b.allow("m", "p") and b.opened() == {("p", "m"): 1}


def test_names_split_only_on_configured_providers() -> None:
    t = Targets(["deepseek"])
    assert (t("deepseek/deepseek-chat").provider, t("deepseek/deepseek-chat").model) == ("deepseek", "deepseek-chat")
    assert t("meta-llama/Llama-3-8b").provider is None and t("meta-llama/Llama-3-8b").model == "meta-llama/Llama-3-8b"


def test_agreement_trims_casefolds_and_compares_json_as_json() -> None:
    assert agree(" Billing\n", "billing") and not agree("billing", "shipping")
    assert agree('{"a": 1, "b": [1, 2]}', '{"b":[1,2],"a":1}') and not agree('{"a": 1}', '{"a": 2}')


@pytest.mark.parametrize(("doc", "words"), [
    ({"canary": {"model": "m", "share": 2}}, "[canary]: share"),
    ({"canary": {"model": "m", "ramp": [0.5, 0.5]}}, "[canary]: ramp must be increasing"),
    ({"canary": {"model": "m", "share": 0.1, "windw": 5}}, "unknown key 'windw'"),
    ({"route": {"models": {"a": "m"}}}, "[route]: models is set but field is not"),
    ({"providers": {"x": {"base_url": "https://h", "api_key": "sk-123"}}}, "keys are never read from a file"),
    ({"providers": {"x": {"base_url": "https://h"}}, "shadow": {"model": "y/m"}}, "no configured provider 'y'"),
])
def test_bad_tables_name_the_table_and_key(doc: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_routing(doc, {}, "config file t.toml")
    assert words in e.value.message and "sk-123" not in e.value.message


def test_a_provider_key_comes_from_its_variable_only() -> None:
    (p,) = parse_providers({"x": {"base_url": "https://h/v1/", "api_key_env": "X_KEY", "rpm": 60}}, {"X_KEY": "k"}, "t")
    assert p.api_key.reveal() == "k" and p.base_url == "https://h/v1" and p.rpm == 60.0
    assert parse_canary(None, "t") is None


def test_a_gateways_hidden_retries_are_judged_as_the_canarys_failures() -> None:
    """Behind a gateway left to retry, every answer comes back 200: the retries it made
    (x-litellm-attempted-retries) are the upstream's failures, judged before the answer."""
    router = Router(None, "base")
    seen = Planner(router, canary(share=1.0, ramp=(), window=50, max_error_rate=0.05))
    blind = Planner(router, canary(share=1.0, ramp=(), window=50, max_error_rate=0.05))
    rng = random.Random(12)
    for _ in range(200):  # 12 % of upstream attempts fail; the gateway retries each once
        hidden = int(rng.random() < 0.12)
        seen.observe(True, 40.0, hidden)
        blind.observe(True, 40.0)
    assert seen.canary is not None and seen.canary.state == "rolled_back"
    assert blind.canary is not None and blind.canary.state == "running"
