"""The simulator's endpoints: each reads its request body into an Ask (or refuses it, as the API
would, with a 400) and builds its answer. Chat completions is answers.py's; embeddings, legacy
completions and the Responses API are here, with the bodies and usage objects OpenAI's reference
shows. Token counts use the same deterministic count as chat, so every endpoint's billed
usage can be checked against what batchrun wrote.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from batchrun.sim.answers import LABELS, Ask, completion_body, messages_text, read_ask, sim_tokens
from batchrun.sim.classify import classification

# Default vector length: small, so answers stay light; a request's `dimensions` sets it.
DEFAULT_DIMENSIONS = 64

MAX_DIMENSIONS = 4096


class BadAsk(ValueError):
    """A request body the endpoint refuses (HTTP 400); the message is the API's."""


@dataclass(frozen=True, slots=True)
class SimEndpoint:
    """One endpoint the simulator serves."""

    name: str
    path: str
    read: Callable[[dict[str, Any]], Ask]  # raises BadAsk
    answer: Callable[[Ask, dict[str, Any], int, int], bytes]  # (ask, body, cached tokens, created)


# what a request asked: its endpoint, the Ask read from it, and its body
Asked = tuple[SimEndpoint, Ask, dict[str, Any]]


def _ask(model: Any, texts: list[str], prompt_tokens: int, cap: Any, system: str | None = None,
         generates: bool = True) -> Ask:
    prompt = texts[-1] if texts else ""
    digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    completion = 8 + digest[0] % 40 if generates else 0
    capped = isinstance(cap, int) and not isinstance(cap, bool) and cap > 0
    if capped:
        completion = min(completion, cap)
    # as for chat: OpenAI counts the prompt plus the output cap against TPM when one is set
    charge = prompt_tokens + (cap if capped and generates else completion)
    return Ask(str(model or ""), prompt, system, prompt_tokens, completion, charge, digest)


def _texts(value: Any, field: str, allow_empty_text: bool = False) -> tuple[list[str], int]:
    """The texts of an `input` or `prompt` and their tokens (token ids count one each)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or (value == "" and not allow_empty_text):
        raise BadAsk(f"'{field}' is a required property and must be a non-empty string or array")
    texts: list[str] = []
    tokens = 0
    for item in items:
        if isinstance(item, str):
            texts.append(item)
            tokens += sim_tokens(item)
        elif type(item) is int:
            tokens += 1
        elif isinstance(item, list) and all(type(t) is int for t in item):
            tokens += len(item)
        else:
            raise BadAsk(f"Invalid value in '{field}': expected strings or arrays of token ids")
    if isinstance(items[0], int):
        texts = [" ".join(map(str, items))]  # one prompt of token ids: one input
    return texts, tokens


def read_embeddings(body: dict[str, Any]) -> Ask:
    """An embeddings request: input only, nothing generated."""
    texts, tokens = _texts(body.get("input"), "input")
    return _ask(body.get("model"), texts, tokens, None, generates=False)


def read_completions(body: dict[str, Any]) -> Ask:
    """A legacy completions request."""
    texts, tokens = _texts(body.get("prompt"), "prompt", allow_empty_text=True)
    return _ask(body.get("model"), texts, tokens, body.get("max_tokens"))


def read_responses(body: dict[str, Any]) -> Ask:
    """A Responses API request: instructions and input counted as chat messages are."""
    items = body.get("input")
    if isinstance(items, str) and items:
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise BadAsk("'input' is a required property and must be a non-empty string or array")
    msgs = messages_text(items)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        msgs.insert(0, ("system", instructions))
    tokens = 3 + sum(4 + sim_tokens(text) for _, text in msgs)
    system = instructions if isinstance(instructions, str) else None
    return _ask(body.get("model"), [t for _, t in msgs], tokens, body.get("max_output_tokens"), system)


def _vector(seed: bytes, n: int, as_base64: bool) -> Any:
    """A deterministic unit vector; drawn from a hash, which is several times quicker than a
    random generator and keeps the simulator's embeddings answers near its chat answers' rate."""
    raw = [b - 127.5 for b in hashlib.shake_128(seed).digest(n)]  # never all zero: no b is 127.5
    scale = 1.0 / math.hypot(*raw)
    v = [x * scale for x in raw]
    return base64.b64encode(struct.pack(f"<{n}f", *v)).decode() if as_base64 else v


def embeddings_body(ask: Ask, body: dict[str, Any], cached: int, created: int) -> bytes:
    """An embeddings list: one unit vector per input, `dimensions` long."""
    dims = body.get("dimensions")
    n = dims if type(dims) is int and 0 < dims <= MAX_DIMENSIONS else DEFAULT_DIMENSIONS
    value = body.get("input")
    inputs = value if isinstance(value, list) and not isinstance(value[0], int) else [value]
    as_base64 = body.get("encoding_format") == "base64"
    data = [{"object": "embedding", "index": i, "embedding": _vector(ask.digest + bytes([i % 256]), n, as_base64)}
            for i in range(len(inputs))]
    return orjson.dumps({"object": "list", "data": data, "model": ask.model,
                         "usage": {"prompt_tokens": ask.prompt_tokens, "total_tokens": ask.prompt_tokens}})


def completions_body(ask: Ask, body: dict[str, Any], cached: int, created: int) -> bytes:
    """A text_completion."""
    return orjson.dumps({
        "id": "cmpl-" + ask.digest.hex(), "object": "text_completion", "created": created, "model": ask.model,
        "choices": [{"text": " " + _label(ask), "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": ask.prompt_tokens, "completion_tokens": ask.completion_tokens,
                  "total_tokens": ask.prompt_tokens + ask.completion_tokens},
    })


def responses_body(ask: Ask, body: dict[str, Any], cached: int, created: int) -> bytes:
    """A completed Response with one output message."""
    text = {"type": "output_text", "text": _label(ask), "annotations": []}
    return orjson.dumps({
        "id": "resp_" + ask.digest.hex(), "object": "response", "created_at": created, "status": "completed",
        "model": ask.model, "instructions": body.get("instructions"),
        "output": [{"type": "message", "id": "msg_" + ask.digest.hex(), "status": "completed",
                    "role": "assistant", "content": [text]}],
        "usage": {"input_tokens": ask.prompt_tokens, "input_tokens_details": {"cached_tokens": cached},
                  "output_tokens": ask.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": ask.prompt_tokens + ask.completion_tokens},
    })


def _label(ask: Ask) -> str:
    return classification(ask.prompt, ask.system) or LABELS[ask.digest[1] % len(LABELS)]


SIM_ENDPOINTS = (
    SimEndpoint("chat", "/chat/completions", read_ask,
                lambda ask, body, cached, created: completion_body(ask, cached, created)),
    SimEndpoint("embeddings", "/embeddings", read_embeddings, embeddings_body),
    SimEndpoint("completions", "/completions", read_completions, completions_body),
    SimEndpoint("responses", "/responses", read_responses, responses_body),
)
