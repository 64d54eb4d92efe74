"""What an LLM gateway (LiteLLM's proxy) tells of the upstream behind it, read from its headers.

A gateway hides what batchrun's safety features read: it retries failed upstream calls itself
(twice by default: the canary sees a third of the errors, 429s are waited out inside it while
the request is held without a byte), and it moves the upstream's own headers under an
`llm_provider-` prefix. Seen on LiteLLM 1.108: every answer and error carries
`x-litellm-call-id`; answers add `x-litellm-version`, `x-litellm-model-name` (the upstream
model, `openai/gpt-4o-mini`), `x-litellm-response-cost` and `x-litellm-attempted-retries`;
`llm_provider-x-request-id` and `llm_provider-retry-after` are the upstream's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.records import Usage
from batchrun.route.providers import Target

# Headers only a LiteLLM proxy sends, on answers and errors alike.
SIGNS = ("x-litellm-call-id", "x-litellm-version")

# Sent in every request body to a detected gateway unless the provider's extra_body says
# otherwise: the gateway then returns each upstream failure and 429 as it comes, so the canary,
# the limiter and the retry count see the upstream's truth (LiteLLM honours it per request).
NO_GATEWAY_RETRIES: dict[str, Any] = {"num_retries": 0}

# Where a request id is, first found wins: the API's own, the upstream's behind a gateway, then
# the gateway's id for the call.
REQUEST_ID_HEADERS = ("x-request-id", "llm_provider-x-request-id", "llm_provider-request-id", "x-litellm-call-id")


def is_gateway(headers: Mapping[str, str]) -> bool:
    """The answer came through a LiteLLM proxy."""
    return any(name in headers for name in SIGNS)


def request_id(headers: Mapping[str, str]) -> str | None:
    """The request's id, from the first header that holds one."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def upstream_model(headers: Mapping[str, str]) -> str | None:
    """The model the gateway sent the request to, without its routing prefix (`openai/`)."""
    name = headers.get("x-litellm-model-name")
    if not name:
        return None
    return name.partition("/")[2] or name


def stated_cost(headers: Mapping[str, str]) -> float | None:
    """The cost the gateway states for the answer; None when it does not say or says 0 (a gateway
    that does not know the price says 0: unknown stays unknown, never $0)."""
    raw = headers.get("x-litellm-response-cost")
    try:
        cost = float(raw) if raw else 0.0
    except ValueError:
        return None
    return cost if cost > 0 and math.isfinite(cost) else None


def upstream_retries(headers: Mapping[str, str]) -> int:
    """How many times the gateway retried the upstream for this answer (hidden attempts)."""
    raw = headers.get("x-litellm-attempted-retries")
    try:
        return max(0, int(raw)) if raw else 0
    except ValueError:
        return 0


def answer_cost(prices: PriceBook, t: Target, usage: Usage, at: float, ans: Any) -> float | None:
    """An answer's cost: its model's price; through a gateway, for an alias with no known price,
    the upstream model's price, else the cost the gateway states; None when none is known, never 0."""
    cost = prices.cost(t.model, usage, at, t.provider)
    if cost is not None or not ans.gateway:
        return cost
    upstream = upstream_model(ans.headers)
    cost = prices.cost(upstream, usage, at) if upstream else None
    return cost if cost is not None else stated_cost(ans.headers)
