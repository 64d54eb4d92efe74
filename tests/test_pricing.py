"""pricing and budget: exact costs, user prices on top, unknown stays unknown."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from batchrun.account.pricing import PriceBook, Rate, load_prices_file
from batchrun.errors import ConfigError
from batchrun.limit.budget import Budget
from batchrun.records import Usage


def test_snapshot_price_matches_published_per_token_prices_exactly() -> None:
    book = PriceBook(base_url="https://api.deepseek.com/v1")
    p = book.price("deepseek-chat")
    assert p is not None and p.source.startswith("genai-prices")
    # DeepSeek's published list price: $0.27 in, $1.10 out, $0.07 cached input per MTok
    u = Usage(input_tokens=1_000, output_tokens=500, cached_tokens=200)
    expected = (Decimal(800) * p.input.base + Decimal(500) * p.output.base
                + Decimal(200) * p.cached_input.base) / Decimal(1_000_000)  # type: ignore[union-attr]
    assert book.cost("deepseek-chat", u) == float(expected)
    assert book.cost("deepseek-chat", u) == pytest.approx(0.00078, abs=1e-15)
    # and it agrees with genai-prices' own calculator
    import genai_prices

    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=200),
        "deepseek-chat", provider_api_url="https://api.deepseek.com/v1",
    )
    assert book.cost("deepseek-chat", u) == float(theirs.total_price)


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
    from batchrun.account.pricing import Price

    tiered = Price(Rate(Decimal("1"), ((200_000, Decimal("2")),)),
                   Rate(Decimal("4"), ((200_000, Decimal("6")),)), None, "test")
    assert tiered.cost(Usage(200_000, 1_000)) == pytest.approx((200_000 * 1 + 1_000 * 4) / 1e6)
    assert tiered.cost(Usage(300_000, 1_000)) == pytest.approx((300_000 * 2 + 1_000 * 6) / 1e6)
