"""Turn input lines into Records or invalid-line results, in the README's three input shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from batchrun.input.endpoints import CHAT, ENDPOINTS, BadBody, Endpoint, for_batch_url
from batchrun.input.keys import KeySet, record_key
from batchrun.input.lines import DEFAULT_MAX_LINE_BYTES, RawLine
from batchrun.input.tokens import DEFAULT_MAX_OUTPUT_TOKENS
from batchrun.records import Record, Result, invalid_result


@dataclass(frozen=True, slots=True)
class Shaping:
    """The request-shaping options that turn a line into a request."""

    model: str | None = None
    template: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    default_max_output: int = DEFAULT_MAX_OUTPUT_TOKENS
    aliases: tuple[tuple[str, str], ...] = ()


class LineParser:
    """Turns raw lines into Records; remembers keys so that a duplicate is a bad line."""

    def __init__(self, shaping: Shaping, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.shaping = shaping
        self.max_line_bytes = max_line_bytes
        self.seen = KeySet()
        self._aliases = dict(shaping.aliases)

    def key_only(self, n: int, data: bytes | None) -> None:
        """Register the key of a line done in an earlier run, so later duplicates still show."""
        if data is None:
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if type(obj) is dict:
            self.seen.add(record_key(obj, n))

    def parse(self, raw: RawLine) -> Record | Result:
        """A Record, or the invalid-line Result saying why not."""
        return self.parse_line(raw.number, None if raw.too_long else raw.data)

    def parse_line(self, n: int, data: bytes | None) -> Record | Result:
        """A Record, or the invalid-line Result saying why not; data None means too long."""
        if data is None:
            return invalid_result(n, f"longer than --max-line-bytes ({self.max_line_bytes} bytes)")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if _bad_utf8(data):
                return invalid_result(n, "not valid UTF-8")
            return invalid_result(n, f"invalid JSON ({e.msg})")
        if not isinstance(obj, dict):
            return invalid_result(n, f"a JSON {_kind(obj)}, not an object")
        key = record_key(obj, n)
        if not self.seen.add(key):
            return invalid_result(n, f"duplicate key {key!r}")
        try:
            endpoint, body = self._body(obj)
        except BadBody as e:
            return invalid_result(n, str(e))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return invalid_result(n, "no model: give the record a model or pass --model")
        model = self._aliases.get(model, model)
        body["model"] = model
        return Record(
            key=key,
            line=n,
            model=model,
            body=body,
            est_input_tokens=endpoint.prompt_tokens(body),
            max_output_tokens=endpoint.max_output_tokens(body, self.shaping.default_max_output),
            endpoint=endpoint.name,
        )

    def _body(self, obj: dict[str, Any]) -> tuple[Endpoint, dict[str, Any]]:
        s = self.shaping
        endpoint = CHAT
        if isinstance(obj.get("body"), dict) and ("url" in obj or "method" in obj):
            url = obj.get("url", CHAT.batch_url)
            found = for_batch_url(url)
            if found is None:
                known = ", ".join(e.batch_url for e in ENDPOINTS.values())
                raise BadBody(f"url {url!r} is not supported (only {known})")
            endpoint = found
            body = dict(obj["body"])
            endpoint.check_body(body)
        elif "messages" in obj:
            body = {k: v for k, v in obj.items() if k not in ("custom_id", "id")}
            endpoint.check_body(body)
        else:
            body = {"messages": self._plain_messages(obj)}
            if isinstance(obj.get("model"), str):
                body["model"] = obj["model"]
        if "model" not in body and s.model:
            body["model"] = s.model
        if s.max_tokens is not None and "max_tokens" not in body:
            body["max_tokens"] = s.max_tokens
        return endpoint, body

    def _plain_messages(self, obj: dict[str, Any]) -> list[dict[str, str]]:
        s = self.shaping
        if s.template is not None:
            try:
                user = s.template.format_map(obj)
            except KeyError as e:
                raise BadBody(f"template field {e.args[0]!r} is missing from the record") from None
            except (IndexError, ValueError, AttributeError) as e:
                raise BadBody(f"template cannot be filled from the record ({e})") from None
        elif isinstance(obj.get("text"), str):
            user = obj["text"]
        else:
            raise BadBody("no messages and no text field (pass --template to shape plain records)")
        messages = [{"role": "user", "content": user}]
        if s.system:
            messages.insert(0, {"role": "system", "content": s.system})
        return messages


def _kind(v: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(v), "null"
    )


def _bad_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False

