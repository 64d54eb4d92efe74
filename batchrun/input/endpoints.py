"""What batchrun knows of each API endpoint, in one place: where it is, what a valid request
body holds, what a real answer looks like, how it reports usage and how its prompt is
estimated. Everything else asks the Endpoint rather than assuming chat completions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchrun.input.tokens import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    input_tokens,
    max_output_tokens,
    prompt_tokens,
    response_tokens,
)
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
    # the body fields that cap the output: a provider counts the cap against tokens-per-minute
    cap_fields: tuple[str, ...] = ("max_completion_tokens", "max_tokens")

    def capped(self, body: dict[str, Any]) -> bool:
        """The body caps its output (so the cap, not the output, counts against TPM)."""
        return any(f in body for f in self.cap_fields)

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



def _check_input(body: dict[str, Any], field: str, allow_empty_text: bool) -> None:
    """An embeddings `input` or completions `prompt`: a string, or a non-empty list of strings,
    of token ids, or of lists of token ids (the shapes OpenAI's reference allows)."""
    value = body.get(field)
    if isinstance(value, str):
        if not value and not allow_empty_text:
            raise BadBody(f"{field} must not be an empty string")
        return
    if not isinstance(value, list) or not value:
        raise BadBody(f"{field} must be a string or a non-empty list of strings or token ids")
    kinds = {_input_kind(v) for v in value}
    if None in kinds or len(kinds) > 1:
        raise BadBody(f"{field} must be a list of strings, of token ids or of token-id lists, not a mix")


def _input_kind(v: Any) -> str | None:
    if isinstance(v, str):
        return "text"
    if type(v) is int:
        return "token"
    if isinstance(v, list) and v and all(type(t) is int for t in v):
        return "tokens"
    return None


def _check_responses(body: dict[str, Any]) -> None:
    items = body.get("input")
    if isinstance(items, str) and items:
        return
    if not isinstance(items, list) or not items:
        raise BadBody("input must be a non-empty string or a non-empty list of input items")
    if not all(isinstance(item, dict) for item in items):
        raise BadBody("every input item must be an object")


def _usage_object(body: Any) -> dict[str, Any] | None:
    usage = body.get("usage") if type(body) is dict else None
    return usage if type(usage) is dict else None


def _embeddings_usage(body: Any) -> Usage | None:
    """Embeddings bill input only: `prompt_tokens` (some servers give only `total_tokens`)."""
    usage = _usage_object(body)
    if usage is None:
        return None
    n = usage.get("prompt_tokens") if "prompt_tokens" in usage else usage.get("total_tokens")
    return Usage(_int(n), 0, 0)


def _responses_usage(body: Any) -> Usage | None:
    """The Responses API's `usage`: input_tokens (cached ones in input_tokens_details) and
    output_tokens, reasoning included."""
    usage = _usage_object(body)
    if usage is None:
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if type(details) is dict else 0
    return Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")), _int(cached))


def _has_list(body: Any, field: str) -> bool:
    return type(body) is dict and type(body.get(field)) is list


EMBEDDINGS = Endpoint(
    name="embeddings",
    path="/embeddings",
    check_body=lambda body: _check_input(body, "input", allow_empty_text=False),
    is_answer=lambda body: _has_list(body, "data"),
    usage=_embeddings_usage,
    prompt_tokens=lambda body: input_tokens(body.get("input")),
    max_output_tokens=lambda body, default: 0,  # a vector: nothing is generated
    cap_fields=(),
)

COMPLETIONS = Endpoint(
    name="completions",
    path="/completions",
    check_body=lambda body: _check_input(body, "prompt", allow_empty_text=True),
    is_answer=lambda body: _has_list(body, "choices"),
    usage=_chat_usage,  # the same usage object as chat completions
    prompt_tokens=lambda body: input_tokens(body.get("prompt")),
    max_output_tokens=lambda body, default: max_output_tokens(body, default, ("max_tokens",)),
    cap_fields=("max_tokens",),
)

RESPONSES = Endpoint(
    name="responses",
    path="/responses",
    check_body=_check_responses,
    is_answer=lambda body: _has_list(body, "output"),
    usage=_responses_usage,
    prompt_tokens=response_tokens,
    max_output_tokens=lambda body, default: max_output_tokens(body, default, ("max_output_tokens",)),
    cap_fields=("max_output_tokens",),
)

ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (CHAT, EMBEDDINGS, COMPLETIONS, RESPONSES)}


def for_batch_url(url: Any) -> Endpoint | None:
    """The endpoint a Batch API line's `url` names (`/v1/chat/completions`), or None."""
    text = str(url).rstrip("/")
    for e in ENDPOINTS.values():
        # "/v1/" tells /v1/completions from /v1/chat/completions; a full URL names it too
        if text == e.path or text.endswith(e.batch_url):
            return e
    return None


__all__ = ["CHAT", "COMPLETIONS", "DEFAULT_MAX_OUTPUT_TOKENS", "EMBEDDINGS", "ENDPOINTS", "RESPONSES", "BadBody",
           "Endpoint", "for_batch_url"]
