"""retry: the pure schedule and retry-after parsing, without sleeping."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

from batchrun.errors import AuthError, BadRequest, RateLimited, ServerError, Timeout
from batchrun.send.retry import RetryPolicy, next_delay, parse_retry_after


def test_full_jitter_stays_within_exponential_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=0.5, cap_s=8.0)
    rng = random.Random(1)
    for attempt in range(1, 10):
        bound = min(8.0, 0.5 * 2 ** (attempt - 1))
        delays = [next_delay(policy, attempt, ServerError("x"), rng) for _ in range(200)]
        assert all(d is not None and 0 <= d <= bound for d in delays)
        assert max(d for d in delays if d is not None) > bound * 0.8  # really spread, not fixed


def test_gives_up_after_max_attempts_and_on_fatal_errors() -> None:
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random(0)
    assert next_delay(policy, 2, Timeout("t"), rng) is not None
    assert next_delay(policy, 3, Timeout("t"), rng) is None
    assert next_delay(policy, 1, BadRequest("b"), rng) is None
    assert next_delay(policy, 1, AuthError("a"), rng) is None


def test_retry_after_is_honoured() -> None:
    d = next_delay(RetryPolicy(), 1, RateLimited("r", retry_after=7.0), random.Random(0))
    assert d is not None and 7.0 <= d <= 7.1


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"retry-after-ms": "250"}, now) == 0.25
    assert parse_retry_after({"retry-after": "3"}, now) == 3.0
    assert parse_retry_after({"llm_provider-retry-after": "1.5"}, now) == 1.5
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after({"retry-after": date}, now) == 30.0
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({}, now) is None
    # ms wins over seconds: it is the more precise of the two OpenAI sends
    assert parse_retry_after({"retry-after-ms": "20", "retry-after": "1"}, now) == 0.02
