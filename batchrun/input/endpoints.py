"""What batchrun knows of each API endpoint, in one place: where it is, what a valid request
body holds, what a real answer looks like, how it reports usage and how its prompt is
estimated. Everything else asks the Endpoint rather than assuming chat completions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchrun.input.tokens import DEFAULT_MAX_OUTPUT_TOKENS, max_output_tokens, prompt_tokens
from batchrun.records import Usage


class BadBody(ValueError):
    """A request body this endpoint cannot take; the message says why, for the error line."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API endpoint."""

    name: str  # as --endpoint spells it
    path: str  # appended to the base URL
    check_body: Callable[[dict[str, Any]], None]  # raises BadBody
    is_answer: Callable[[Any], bool]  # a 200's parsed body is a real answer
    usage: Callable[[Any], Usage | None]  # None: the answer reported no usage (unmetered)
    prompt_tokens: Callable[[dict[str, Any]], int]  # estimated, offline
    max_output_tokens: Callable[[dict[str, Any], int], int]

    @property
    def batch_url(self) -> str:
        """The `url` of a Batch API request line for this endpoint."""
        return "/v1" + self.path


def _int(v: Any) -> int:
    return v if type(v) is int and v > 0 else 0


def _check_chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadBody("messages must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m:
            raise BadBody("every message must be an object with a role")


def _chat_usage(body: Any) -> Usage | None:
    """OpenAI's chat `usage` object, None when there is none; odd fields count as zero."""
    usage = body.get("usage") if type(body) is dict else None
    if type(usage) is not dict:
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if type(details) is dict else 0
    return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), _int(cached))


CHAT = Endpoint(
    name="chat",
    path="/chat/completions",
    check_body=_check_chat,
    is_answer=lambda body: type(body) is dict and type(body.get("choices")) is list,
    usage=_chat_usage,
    prompt_tokens=lambda body: prompt_tokens(body["messages"]),
    max_output_tokens=max_output_tokens,
)

ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (CHAT,)}


def for_batch_url(url: Any) -> Endpoint | None:
    """The endpoint a Batch API line's `url` names (`/v1/chat/completions`), or None."""
    text = str(url).rstrip("/")
    for e in ENDPOINTS.values():
        if text.endswith(e.path):
            return e
    return None


__all__ = ["CHAT", "DEFAULT_MAX_OUTPUT_TOKENS", "ENDPOINTS", "BadBody", "Endpoint", "for_batch_url"]
