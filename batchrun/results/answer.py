"""The answer in a response body, whichever endpoint gave it, read defensively: a body of an
unexpected shape gives no answer rather than an error (providers and gateways differ)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson


def answer_text(body: Any) -> str | None:
    """The reply text of a chat, completions or Responses answer; an embedding's vector length
    as text; None when the body holds none of these."""
    if not isinstance(body, dict):
        return None
    if body.get("object") == "batchrun.chunks" and isinstance(body.get("chunks"), list):  # --chunk-long
        texts = [answer_text(b) for b in body["chunks"]]
        return None if None in texts else "\n\n".join(t for t in texts if t is not None)
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return _choice_text(choices[0])
    output = body.get("output")
    if isinstance(output, list):
        return _responses_text(output)
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return _embedding_length(data[0].get("embedding"))
    return None


def _choice_text(choice: dict[str, Any]) -> str | None:
    message = choice.get("message")
    if isinstance(message, dict):  # chat completions
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content parts
            return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:  # a tool call is the answer: keep it readable as JSON
            return orjson.dumps(calls).decode()
        return None
    text = choice.get("text")  # legacy completions
    return text if isinstance(text, str) else None


def _responses_text(output: list[Any]) -> str | None:
    parts = [
        c["text"]
        for item in output if isinstance(item, dict) and isinstance(item.get("content"), list)
        for c in item["content"]
        if isinstance(c, dict) and c.get("type") == "output_text" and isinstance(c.get("text"), str)
    ]
    return "".join(parts) if parts else None


def _embedding_length(vector: Any) -> str | None:
    if isinstance(vector, list):
        return str(len(vector))
    if isinstance(vector, str):  # encoding_format "base64": little-endian float32s
        try:
            return str(len(base64.b64decode(vector, validate=True)) // 4)
        except (binascii.Error, ValueError):
            return None
    return None


_FENCE = re.compile(r"\A\s*```[A-Za-z]*\s*\n(.*?)\n\s*```\s*\Z", re.S)


def answer_object(text: str | None) -> dict[str, Any] | None:
    """The answer as a JSON object (structured output), also inside a ```json fence; None when
    it is not one."""
    if not text:
        return None
    fenced = _FENCE.match(text)
    try:
        value = orjson.loads(fenced[1] if fenced else text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def cell(value: Any) -> str | int | float | bool | None:
    """A JSON value as one cell: scalars as they are, objects and arrays as compact JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return orjson.dumps(value).decode()
