"""Flex processing on the simulator (OpenAI's `service_tier: "flex"`): a request asking for it
is answered after `flex_latency_ms` instead of the usual latency, a `flex_unavailable_share` of
them get OpenAI's 429 "Resource Unavailable" (not billed; nothing says how long to wait), and
the answer says `"service_tier": "flex"`. With `flex_latency_ms` unset the simulator does not
offer flex: such a request gets the 400 OpenAI gives a model without it."""

from __future__ import annotations

import random
from typing import Any

import orjson

from batchrun.sim.answers import error_body
from batchrun.sim.config import SimConfig
from batchrun.sim.stats import SimStats

UNAVAILABLE = ("Resource Unavailable: flex processing has no capacity for this request right now. Retry "
               "later, or send it without service_tier \"flex\".")


def wants_flex(body: dict[str, Any]) -> bool:
    """Whether a request asked for flex processing."""
    return body.get("service_tier") == "flex"


def flex_refusal(c: SimConfig, body: dict[str, Any], rng: random.Random) -> tuple[int, bytes] | None:
    """(status, body) refusing a flex request, if it is refused."""
    if not wants_flex(body):
        return None
    if c.flex_latency_ms is None:
        return 400, error_body(400, "invalid_request_error",
                               "service_tier 'flex' is not available for this model (the simulator offers flex "
                               "with --flex-latency-ms).")
    if c.flex_unavailable_share and rng.random() < c.flex_unavailable_share:
        return 429, error_body(429, "resource_unavailable", UNAVAILABLE)
    return None


def flex_latency(c: SimConfig, body: dict[str, Any], rng: random.Random) -> float:
    """A request's latency in ms, its jitter taken: flex's where it asked for flex."""
    base = c.flex_latency_ms if wants_flex(body) and c.flex_latency_ms is not None else c.latency_ms
    return base + (rng.uniform(-c.jitter_ms, c.jitter_ms) if c.jitter_ms else 0.0)


def flex_answer(answer: bytes, body: dict[str, Any], stats: SimStats) -> bytes:
    """The answer, saying it was served at flex where it was (and counted so)."""
    if not wants_flex(body):
        return answer
    stats.flex_billed += 1
    doc = orjson.loads(answer)
    doc["service_tier"] = "flex"
    return orjson.dumps(doc)
