"""A pure, offline estimate of a request's tokens before it is sent.

No tokenizer is downloaded: English-like text runs about four characters a token, while CJK and
other non-ASCII scripts run closer to one character a token, so the two are counted apart. The
estimate feeds the tokens-per-minute budget and the worst-case cost reservation; both are
reconciled with the usage the server reports.
"""

from __future__ import annotations

from typing import Any

# Chat formatting overhead per message and per request (OpenAI's cookbook figures).
PER_MESSAGE = 4

PER_REQUEST = 3

# Worst-case output when a request does not set max_tokens (stated in the README).
DEFAULT_MAX_OUTPUT_TOKENS = 512


def text_tokens(text: str) -> int:
    """Estimated tokens of one string."""
    if text.isascii():
        return (len(text) + 3) // 4
    ascii_chars = len(text.encode("ascii", "ignore"))
    return (ascii_chars + 3) // 4 + (len(text) - ascii_chars)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):  # multi-part content: count the text parts
        n = 0
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                n += text_tokens(part["text"])
        return n
    return 0


def prompt_tokens(messages: list[Any]) -> int:
    """Estimated prompt tokens of a messages list."""
    n = PER_REQUEST
    for m in messages:
        if isinstance(m, dict):
            n += PER_MESSAGE + _content_tokens(m.get("content"))
    return n


def input_tokens(value: Any) -> int:
    """Estimated tokens of an embeddings `input` or a completions `prompt`: a string, a list of
    strings, a list of token ids or a list of such lists (token ids count as they are)."""
    if isinstance(value, str):
        return text_tokens(value)
    if not isinstance(value, list):
        return 0
    n = 0
    for item in value:
        if isinstance(item, str):
            n += text_tokens(item)
        elif isinstance(item, int):
            n += 1
        elif isinstance(item, list):
            n += len(item)
    return n


def response_tokens(body: dict[str, Any]) -> int:
    """Estimated prompt tokens of a Responses API body: its instructions and input items (a
    string, or messages whose content is a string or a list of parts)."""
    n = PER_REQUEST
    if isinstance(body.get("instructions"), str):
        n += PER_MESSAGE + text_tokens(body["instructions"])
    items = body.get("input")
    if isinstance(items, str):
        return n + PER_MESSAGE + text_tokens(items)
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            n += PER_MESSAGE + _content_tokens(item.get("content"))
    return n


def max_output_tokens(
    body: dict[str, Any], default: int = DEFAULT_MAX_OUTPUT_TOKENS,
    names: tuple[str, ...] = ("max_completion_tokens", "max_tokens"),
) -> int:
    """The most output a request can produce: its cap (the first of `names` it sets), else the
    stated default."""
    for name in names:
        v = body.get(name)
        if isinstance(v, int) and v > 0:
            return v
    return default

