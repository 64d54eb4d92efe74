"""What the simulator answers: the request read into an Ask, the completion, and error bodies.

Usage numbers are deterministic (a word-and-character count, deliberately not batchrun's own
estimator, so estimate / actual is a real measurement)."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from batchrun.sim.classify import classification

_WORD = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")

LABELS = ("positive", "negative", "neutral", "billing", "shipping", "technical")


def sim_tokens(text: str) -> int:
    """The simulator's token count of a text: about one per short word or symbol."""
    n = 0
    for w in _WORD.findall(text):
        n += max(1, math.ceil(len(w) / 6)) if w.isascii() else len(w)
    return n


def messages_text(messages: Any) -> list[tuple[str, str]]:
    """(role, text) of each chat message, with a multi-part content's text parts joined."""
    out = []
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, list):
            c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
        out.append((str(m.get("role")), c if isinstance(c, str) else ""))
    return out


@dataclass(frozen=True, slots=True)
class Ask:
    """One chat request as the simulator reads it."""

    model: str
    prompt: str  # the last message's text: what tests count attempts by
    system: str | None
    prompt_tokens: int
    completion_tokens: int
    charge: int  # what the request counts against a tokens-per-minute limit
    digest: bytes


def read_ask(body: dict[str, Any]) -> Ask:
    """The Ask in a parsed request body."""
    msgs = messages_text(body.get("messages"))
    prompt = msgs[-1][1] if msgs else ""
    prompt_tokens = 3 + sum(4 + sim_tokens(text) for _, text in msgs)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    completion = 8 + digest[0] % 40
    if isinstance(max_tokens, int) and max_tokens > 0:
        completion = min(completion, max_tokens)
    # OpenAI counts the prompt plus max_tokens against TPM when the request sets it; without it,
    # the tokens actually produced.
    charge = prompt_tokens + (max_tokens if isinstance(max_tokens, int) else completion)
    system = next((t for r, t in msgs if r == "system"), None)
    return Ask(str(body.get("model") or ""), prompt, system, prompt_tokens, completion, charge, digest)


class PromptCache:
    """Which system prompts were seen, for OpenAI-style cached-token counts."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def cached_tokens(self, ask: Ask) -> int:
        """Tokens served from cache: a repeated system prompt, in 128-token blocks, past 1024."""
        if ask.system is None:
            return 0
        cached = 0
        if ask.system in self._seen and ask.prompt_tokens >= 1024:
            cached = (sim_tokens(ask.system) // 128) * 128
        self._seen.add(ask.system)
        return cached


def completion_body(ask: Ask, cached: int, created: int) -> bytes:
    """The JSON of a chat.completion answering `ask`."""
    label = classification(ask.prompt, ask.system) or LABELS[ask.digest[1] % len(LABELS)]
    return orjson.dumps({
        "id": "chatcmpl-" + ask.digest.hex(),
        "object": "chat.completion",
        "created": created,
        "model": ask.model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": label}}],
        "usage": {"prompt_tokens": ask.prompt_tokens, "completion_tokens": ask.completion_tokens,
                  "total_tokens": ask.prompt_tokens + ask.completion_tokens,
                  "prompt_tokens_details": {"cached_tokens": cached}},
    })


def error_body(status: int, code: str, message: str, kind: str | None = None) -> bytes:
    """OpenAI's error JSON; `kind` is its `type`, by default from the status."""
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "code": code}})
