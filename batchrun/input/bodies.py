"""The request body of a plain record, or of a chat-completions body, for the endpoint that
`--endpoint` names. A Batch API line needs none of this: its body is sent as it is.

Each endpoint takes the text where its API reference puts it: embeddings and the Responses API
as `input`, legacy completions as `prompt`, chat as the user message. A chat body keeps its other
fields; only what the target endpoint spells differently is renamed.
"""

from __future__ import annotations

from typing import Any

from batchrun.input.endpoints import BadBody

# What an embeddings request may carry besides its input; a chat body's sampling fields would
# be refused by the server (OpenAI answers 400 to an unrecognized argument).
_EMBEDDING_FIELDS = ("model", "dimensions", "encoding_format", "user")

# Chat content parts are `text`; the Responses API calls an input part `input_text`, and an
# earlier assistant turn's part `output_text`.
_PART_TYPES = {"text": "input_text", "image_url": "input_image"}


def plain_body(endpoint: str, text: str, system: str | None) -> dict[str, Any]:
    """The body sending one text (a plain record's `text` or filled template) to `endpoint`."""
    if endpoint == "embeddings":
        return {"input": text}
    if endpoint == "completions":
        return {"prompt": text}
    if endpoint == "responses":
        return {"input": text, **({"instructions": system} if system else {})}
    messages = [{"role": "user", "content": text}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def from_chat_body(endpoint: str, chat: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions body (messages already checked) reshaped for `endpoint`."""
    if endpoint == "chat":
        return chat
    rest = {k: v for k, v in chat.items() if k != "messages"}
    if endpoint == "responses":
        cap = rest.pop("max_completion_tokens", None) or rest.pop("max_tokens", None)
        rest.pop("max_tokens", None)
        if cap is not None:
            rest["max_output_tokens"] = cap
        return {**rest, "input": [_response_item(m) for m in chat["messages"]]}
    text = messages_text(chat["messages"])
    if endpoint == "embeddings":
        return {**{k: rest[k] for k in _EMBEDDING_FIELDS if k in rest}, "input": text}
    cap = rest.pop("max_completion_tokens", None)
    if cap is not None and "max_tokens" not in rest:
        rest["max_tokens"] = cap
    return {**rest, "prompt": text}


def messages_text(messages: list[Any]) -> str:
    """The text of a conversation, one message a paragraph, for an endpoint that takes text."""
    parts = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            content = " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        if isinstance(content, str) and content:
            parts.append(content)
    if not parts:
        raise BadBody("the messages hold no text to send")
    return "\n\n".join(parts)


def _response_item(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):
        out_type = "output_text" if message.get("role") == "assistant" else None
        content = [_response_part(p, out_type) for p in content]
    return {"role": message.get("role"), "content": content}


def _response_part(part: Any, out_type: str | None) -> Any:
    if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
        return part
    kind = out_type if out_type and part["type"] == "text" else _PART_TYPES[part["type"]]
    if part["type"] == "image_url" and isinstance(part.get("image_url"), dict):
        return {"type": kind, "image_url": part["image_url"].get("url")}
    return {**part, "type": kind}
