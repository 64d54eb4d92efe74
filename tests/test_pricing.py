"""pricing and budget: exact costs, user prices on top, unknown stays unknown."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from batchrun.account.prices import Rate, load_prices_file
from batchrun.account.pricing import PriceBook
from batchrun.errors import ConfigError
from batchrun.limit.budget import Budget
from batchrun.records import Usage

# DeepSeek's published list price (genai-prices data): $0.27 in, $1.10 out, $0.07 cached input per
# MTok from 00:30 to 16:30 UTC, and half that in the other hours.
AT_03 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC).timestamp()
AT_20 = datetime(2026, 3, 2, 20, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("at", "expected"), [(AT_03, 0.00078), (AT_20, 0.00039)])
def test_snapshot_price_matches_published_per_token_prices_exactly(at: float, expected: float) -> None:
    book = PriceBook(base_url="https://api.deepseek.com/v1", clock=lambda: at)
    p = book.price("deepseek-chat")
    assert p is not None and p.source.startswith("genai-prices")
    u = Usage(input_tokens=1_000, output_tokens=500, cached_tokens=200)
    exact = (Decimal(800) * p.input.base + Decimal(500) * p.output.base
             + Decimal(200) * p.cached_input.base) / Decimal(1_000_000)  # type: ignore[union-attr]
    assert book.cost("deepseek-chat", u) == float(exact)
    assert book.cost("deepseek-chat", u) == pytest.approx(expected, abs=1e-15)
    # and it agrees with genai-prices' own calculator at the same moment
    import genai_prices

    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=200),
        "deepseek-chat", provider_api_url="https://api.deepseek.com/v1",
        genai_request_timestamp=datetime.fromtimestamp(at, UTC),
    )
    assert book.cost("deepseek-chat", u) == float(theirs.total_price)


def test_the_same_usage_is_priced_at_the_hour_its_request_was_sent() -> None:
    book = PriceBook(base_url="https://api.deepseek.com/v1", clock=lambda: AT_20)
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert book.cost("deepseek-chat", u, at=AT_03) == pytest.approx(0.27 + 1.10)
    assert book.cost("deepseek-chat", u, at=AT_20) == pytest.approx(0.135 + 0.55)
    assert book.cost("deepseek-chat", u) == pytest.approx(0.135 + 0.55)  # no time given: the clock's
    assert book.period("deepseek-chat", AT_03) == "00:30-16:30 UTC"
    assert book.period("deepseek-chat", AT_20) == "outside 00:30-16:30 UTC"
    assert book.most("deepseek-chat", u) == pytest.approx(0.27 + 1.10)  # a reservation holds at any hour
    assert book.period("gpt-4o-mini") is None  # one price at every hour


def test_user_prices_override_and_cached_tokens_priced_as_cached(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\ncached_input = 0.25\n'
                 '[models."my-gateway-model"]\ninput = 3\noutput = 4\n')
    book = PriceBook(load_prices_file(f), "https://api.openai.com/v1")
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=400_000)
    assert book.cost("gpt-4o-mini", u) == pytest.approx(0.6 + 0.1 + 2.0)
    assert book.cost("my-gateway-model", Usage(2_000_000, 1_000_000)) == pytest.approx(10.0)
    # no cached rate: cached tokens pay the input rate
    assert book.cost("my-gateway-model", Usage(1_000_000, 0, 500_000)) == pytest.approx(3.0)


def test_unknown_model_costs_none() -> None:
    book = PriceBook(base_url="http://127.0.0.1:9/v1")
    assert book.price("no-such-model-anywhere-42") is None
    assert book.cost("no-such-model-anywhere-42", Usage(10, 10)) is None


def test_tiered_rate_cliff() -> None:
    r = Rate(Decimal("1"), ((200_000, Decimal("2")),))
    assert r.at(200_000) == 1 and r.at(200_001) == 2


@pytest.mark.parametrize("body", ['[models."a"]\ninput = 1\n', '[models."a"]\ninput = "x"\noutput = 1\n',
                                  '[models."a"]\ninput = -1\noutput = 1\n', "models = 3\n"])
def test_bad_prices_file_is_config_error(tmp_path: Path, body: str) -> None:
    f = tmp_path / "p.toml"
    f.write_text(body)
    with pytest.raises(ConfigError):
        load_prices_file(f)


def test_budget_reserves_worst_case_and_settles_actual() -> None:
    b = Budget(cap_usd=1.0, spent_usd=0.5)
    assert b.try_reserve(0.3)
    assert not b.try_reserve(0.3)  # 0.5 + 0.3 + 0.3 > 1
    b.settle(0.3, 0.1)
    assert b.spent_usd == pytest.approx(0.6) and b.reserved_usd == 0
    assert b.try_reserve(0.3)
    assert Budget(None).try_reserve(1e9)


def test_tiered_price_applies_the_crossed_tier_to_all_tokens() -> None:
    from batchrun.account.prices import Price

    tiered = Price(Rate(Decimal("1"), ((200_000, Decimal("2")),)),
                   Rate(Decimal("4"), ((200_000, Decimal("6")),)), None, "test")
    assert tiered.cost(Usage(200_000, 1_000)) == pytest.approx((200_000 * 1 + 1_000 * 4) / 1e6)
    assert tiered.cost(Usage(300_000, 1_000)) == pytest.approx((300_000 * 2 + 1_000 * 6) / 1e6)


def test_snapshot_answers_are_kept_on_disk_per_installed_snapshot_time_dependent_ones_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchrun.account import price_cache
    from batchrun.account.snapshot import snapshot_entry

    monkeypatch.setenv("BATCHRUN_CACHE_DIR", str(tmp_path))
    price_cache._store.cache_clear()
    asked: list[str] = []

    def look_up(model: str, url: str | None):
        asked.append(model)
        return snapshot_entry(model, url)

    try:
        first = price_cache.cached_entry("gpt-4o-mini", None, look_up)
        unknown = price_cache.cached_entry("no-such-model-anywhere", None, look_up)
        timed = price_cache.cached_entry("deepseek-chat", "https://api.deepseek.com", look_up)
        (saved,) = tmp_path.glob("genai-prices-*.json")  # named for the installed snapshot file
        price_cache._store.cache_clear()  # a later run: read back from the file
        assert price_cache.cached_entry("gpt-4o-mini", None, look_up) == first
        assert price_cache.cached_entry("no-such-model-anywhere", None, look_up) == unknown
        again = price_cache.cached_entry("deepseek-chat", "https://api.deepseek.com", look_up)
        assert len(timed.periods) > 1 and saved.exists()
        assert asked == ["gpt-4o-mini", "no-such-model-anywhere", "deepseek-chat"]  # off-peak hours kept too
        assert [(p.price, p.label) for p in again.periods] == [(p.price, p.label) for p in timed.periods]
        start = datetime(2026, 3, 1, tzinfo=UTC)
        for minute in range(0, 24 * 60, 7):  # the same period applies at every time of day
            at = start + timedelta(minutes=minute)
            assert again.at(at).label == timed.at(at).label  # type: ignore[union-attr]
        assert first.periods[0].price.cost(Usage(1_000_000, 0, 0)) == 0.15
        asked.clear()  # simulators on fresh loopback ports: one entry, not one per port
        on_a = price_cache.cached_entry("gpt-4o-mini", "http://127.0.0.1:4001/v1", look_up)
        assert price_cache.cached_entry("gpt-4o-mini", "http://localhost:4002/v1", look_up) == on_a
        assert asked == ["gpt-4o-mini"]
    finally:
        price_cache._store.cache_clear()


def test_the_caches_daily_window_and_start_date_agree_with_genai_prices_own() -> None:
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    from batchrun.account.price_cache import _constraint, _unconstraint

    cet = timezone(timedelta(hours=1))
    theirs = [TimeOfDateConstraint(time(0, 30, tzinfo=UTC), time(16, 30, tzinfo=UTC)),
              TimeOfDateConstraint(time(22, 0), time(6, 0)),  # naive, wrapping past midnight
              TimeOfDateConstraint(time(23, 30, tzinfo=cet), time(8, 0, tzinfo=cet)),
              StartDateConstraint(date(2026, 3, 2))]
    start = datetime(2026, 3, 1, 12, 0)
    for constraint in theirs:
        ours = _unconstraint(orjson.loads(orjson.dumps(_constraint(constraint.active))))
        assert ours is not None
        for minute in range(0, 2 * 24 * 60, 11):
            for at in (start + timedelta(minutes=minute), (start + timedelta(minutes=minute)).replace(tzinfo=cet)):
                assert ours(at) == constraint.active(at), (constraint, at)
