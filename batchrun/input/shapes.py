"""Turn input lines into Records or invalid-line results, in the README's three input shapes."""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from batchrun.errors import ConfigError
from batchrun.input.bodies import from_chat_body, plain_body
from batchrun.input.endpoints import CHAT, ENDPOINTS, BadBody, Endpoint, for_batch_url
from batchrun.input.keys import BadKey, KeySet, own_key
from batchrun.input.lines import DEFAULT_MAX_LINE_BYTES, RawLine, line_batches
from batchrun.input.template import check_template, fill, template_fields
from batchrun.input.tokens import DEFAULT_MAX_OUTPUT_TOKENS
from batchrun.records import Record, Result, invalid_result

NO_MODEL = "no model: give the record a model or pass --model"


@dataclass(frozen=True, slots=True)
class Shaping:
    """The request-shaping options that turn a line into a request."""

    model: str | None = None
    template: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    default_max_output: int = DEFAULT_MAX_OUTPUT_TOKENS
    aliases: tuple[tuple[str, str], ...] = ()
    endpoint: str = "chat"  # where plain records and chat bodies go (--endpoint)
    model_field: str | None = None  # a plain record's field that names its model; `model` is data
    route_field: str | None = None  # a top-level field of the line that [route] decides by
    # [route]'s models by the field's value, and its long-prompt rule (over N tokens, model): a
    # record the route sends somewhere needs no model of its own nor --model
    route_models: tuple[tuple[str, str], ...] = ()
    route_long: tuple[int, str] | None = None


def is_plain(obj: dict[str, Any]) -> bool:
    """A plain record: neither a Batch API request line nor a chat-completions body."""
    return not _is_batch_line(obj) and "messages" not in obj


def _is_batch_line(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("body"), dict) and ("url" in obj or "method" in obj)


class LineParser:
    """Turns raw lines into Records; remembers keys so that a duplicate is a bad line.

    Counts what the caller reports once after reading: `streams_disabled`, records that asked
    for `stream: true` and are sent with `stream: false`; `models_missing`, lines that named no
    model while no --model was given.
    """

    def __init__(self, shaping: Shaping, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.shaping = shaping
        self.max_line_bytes = max_line_bytes
        self.seen = KeySet()
        self.streams_disabled = 0
        self.models_missing = 0
        self._aliases = dict(shaping.aliases)
        self._route_models = dict(shaping.route_models)

    def key_only(self, n: int, data: bytes | None) -> None:
        """Register the key of a line done in an earlier run, so later duplicates still show."""
        if data is None:
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if type(obj) is dict:
            try:
                key = own_key(obj, n)
            except BadKey:
                return
            if key is not None:
                self.seen.add(key)

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
        try:
            key = own_key(obj, n)
        except BadKey as e:
            return invalid_result(n, str(e))
        if key is None:
            key = f"line-{n}"  # unique by its line number: no other line may use it (keys.py)
        elif not self.seen.add(key):
            return invalid_result(n, f"duplicate key {key!r}")
        try:
            endpoint, body = self._body(obj)
        except BadBody as e:
            return invalid_result(n, _bad_body(str(e), obj, key, n))
        own_model = _own_model(obj, self.shaping.model_field)
        model = body.get("model") or self._routed(obj, endpoint.prompt_tokens(body))
        if not isinstance(model, str) or not model:
            self.models_missing += 1
            return invalid_result(n, NO_MODEL)
        model = self._aliases.get(model, model)
        body["model"] = model
        if body.get("stream"):
            # answers are read whole; a streamed 200 is billed, then unreadable as an answer
            body["stream"] = False
            body.pop("stream_options", None)  # only allowed with stream: true
            self.streams_disabled += 1
        return Record(
            key=key,
            line=n,
            model=model,
            body=body,
            est_input_tokens=endpoint.prompt_tokens(body),
            max_output_tokens=endpoint.max_output_tokens(body, self.shaping.default_max_output),
            endpoint=endpoint.name,
            route_value=_route_value(obj, self.shaping.route_field),
            own_model=own_model,
        )

    def _routed(self, obj: dict[str, Any], prompt_tokens: int) -> str | None:
        """The model [route] gives a line with no model of its own (the router decides the same)."""
        s = self.shaping
        if s.route_long is not None and prompt_tokens > s.route_long[0]:
            return s.route_long[1]
        value = _route_value(obj, s.route_field)
        return self._route_models.get(value) if value is not None else None

    def _body(self, obj: dict[str, Any]) -> tuple[Endpoint, dict[str, Any]]:
        s = self.shaping
        if _is_batch_line(obj):
            url = obj.get("url", CHAT.batch_url)
            found = for_batch_url(url)
            if found is None:
                known = ", ".join(e.batch_url for e in ENDPOINTS.values())
                raise BadBody(f"url {url!r} is not supported (only {known})")
            endpoint = found
            body = dict(obj["body"])
        else:
            endpoint = ENDPOINTS[s.endpoint]
            if "messages" in obj:
                chat = {k: v for k, v in obj.items() if k not in ("custom_id", "id")}
                CHAT.check_body(chat)
                body = from_chat_body(endpoint.name, chat)
                if endpoint is CHAT:  # checked just above: once per record is enough
                    return self._finish(endpoint, body)
            else:
                body = plain_body(endpoint.name, self._plain_text(obj), s.system)
                if s.model_field is not None and s.model_field in obj:
                    value = obj[s.model_field]
                    if not isinstance(value, str) or not value.strip():  # a typo'd value is the line's fault
                        raise BadBody(f"its {s.model_field!r} field (--model-field) names no model: {value!r}")
                    body["model"] = value
        endpoint.check_body(body)
        return self._finish(endpoint, body)

    def _finish(self, endpoint: Endpoint, body: dict[str, Any]) -> tuple[Endpoint, dict[str, Any]]:
        """The job's model and output cap where the body sets neither."""
        s = self.shaping
        if "model" not in body and s.model:
            body["model"] = s.model
        # a body's own cap wins, in either spelling: providers refuse a request that sets both;
        # an embedding has no output to cap
        if s.max_tokens is not None and endpoint.cap_fields and not endpoint.capped(body):
            body[endpoint.cap_fields[-1]] = s.max_tokens
        return endpoint, body

    def _plain_text(self, obj: dict[str, Any]) -> str:
        s = self.shaping
        if s.template is not None:
            return fill(s.template, obj)
        if isinstance(obj.get("text"), str):
            return str(obj["text"])
        raise BadBody("no messages and no text field (pass --template to shape plain records)")


def _bad_body(reason: str, obj: dict[str, Any], key: str, n: int) -> str:
    """Why a line makes no request, naming its own key (the output line's is `line-N`), and saying
    so when the line is a results line: a results file given as the input."""
    own = "" if key == f"line-{n}" else f"(key {key!r}) "
    if "response" in obj and "error" in obj and "custom_id" in obj:
        return (f"{own}this is a line of a results file (custom_id, response, error), not a request: pass the "
                "job's input file, not its results")
    return own + reason


def _own_model(obj: dict[str, Any], model_field: str | None) -> bool:
    """Whether the line names its model: a Batch API body's or a chat body's `model`; a plain
    record only in the field --model-field names (its `model` is data)."""
    if _is_batch_line(obj):
        return "model" in obj["body"]
    if "messages" in obj:
        return "model" in obj
    return model_field is not None and model_field in obj


def _route_value(obj: dict[str, Any], name: str | None) -> str | None:
    """The line's value of the [route] field, as text; None when unset or not a scalar."""
    if name is None:
        return None
    v = obj.get(name)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, str | int | float) else None


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


async def first_plain_record(
    path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[int, dict[str, Any]] | None:
    """The first plain record of a file with a usable key, and its line number; None if there is
    none. Reading stops there, so on a file of plain records this costs one line."""
    async with aclosing(line_batches(path, max_line_bytes)) as batches:
        async for batch in batches:
            for n, data in batch:
                if data is None:
                    continue
                try:
                    obj = orjson.loads(data)
                    if type(obj) is dict and is_plain(obj):
                        own_key(obj, n)
                        return n, obj
                except (orjson.JSONDecodeError, BadKey):
                    continue  # a bad line: it becomes an error line, it does not shape the job
    return None


async def check_template_file(template: str | None, path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
    """Before anything is sent: raise ConfigError if --template does not parse or names a field
    the input's first plain record lacks (InputError if the input cannot be read)."""
    if template is None:
        return
    template_fields(template)  # a template that does not parse is refused without reading the file
    found = await first_plain_record(path, max_line_bytes)
    if found is not None:
        check_template(template, found[1], found[0])


async def check_model_named(parser: LineParser, path: Path) -> None:
    """Before anything is written: with no --model, a file where no record names a model would
    become a file of error lines; that is a missing flag (ConfigError), said once. Reading stops
    at the first record that makes a request."""
    if parser.shaping.model:
        return
    probe = LineParser(parser.shaping, parser.max_line_bytes)  # its own key set: no side effects
    first: int | None = None
    async with aclosing(line_batches(path, parser.max_line_bytes)) as batches:
        async for batch in batches:
            for n, data in batch:
                item = probe.parse_line(n, data)
                if isinstance(item, Record):
                    return
                if first is None and item.error_message and item.error_message.endswith(NO_MODEL):
                    first = n
    if first is not None:
        raise ConfigError(f"no record names a model (line {first} is the first) and no --model was given: "
                          "pass --model")
