"""Pure retry decisions: the next delay, or give up. No sleeping, no I/O.

Backoff is exponential with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"): delay = uniform(0, min(cap, base * 2**(attempt-1))). A server's own word wins:
`retry-after-ms` (OpenAI), `retry-after` in seconds or as an HTTP date (RFC 9110 §10.2.3), or a
gateway's provider-prefixed `llm_provider-retry-after` (LiteLLM).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from batchrun.errors import RateLimited, RequestError, RetryableError

DEFAULT_MAX_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one record."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_s: float = 0.5
    cap_s: float = 30.0
    # A server asking for more than this is treated as "give up on this record for now".
    max_retry_after_s: float = 600.0
    # The longest a record waits out a 429's retry-after before the job stops (None: no limit).
    max_wait_s: float | None = None


def next_delay(
    policy: RetryPolicy, attempt: int, error: RequestError, rng: random.Random
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up.

    `attempt` is the number of attempts already made (1 after the first failure).
    """
    if not isinstance(error, RetryableError) or attempt >= policy.max_attempts:
        return None
    jitter = rng.uniform(0.0, min(policy.cap_s, policy.base_s * 2 ** (attempt - 1)))
    if isinstance(error, RateLimited) and error.retry_after is not None:
        if error.retry_after > policy.max_retry_after_s:
            return None
        # Honour the server, plus a little spread so that waiting workers do not return at once.
        return error.retry_after + jitter * 0.1
    return jitter


def parse_retry_after(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds the server asks us to wait, from any header that says so, else None."""
    ms = headers.get("retry-after-ms") or headers.get("llm_provider-retry-after-ms")  # behind LiteLLM
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    for name in ("retry-after", "llm_provider-retry-after", "x-retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            continue
        return max(0.0, when.timestamp() - now_epoch)
    return None

