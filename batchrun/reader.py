"""Stream the input file into Records or invalid-line results, in SPEC.md's three shapes.

The file is read in chunks and split on newlines here, so memory stays flat whatever the file's
size and no line costs a thread hop of its own.
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import orjson

from batchrun.errors import InputError
from batchrun.records import Record, Result, invalid_result
from batchrun.tokens import DEFAULT_MAX_OUTPUT_TOKENS, max_output_tokens, prompt_tokens

CHUNK = 1 << 20
DEFAULT_MAX_LINE_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class Shaping:
    """The request-shaping options that turn a line into a request."""

    model: str | None = None
    template: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    default_max_output: int = DEFAULT_MAX_OUTPUT_TOKENS
    aliases: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RawLine:
    """One non-blank line as bytes, or the reason it could not be taken whole."""

    number: int
    data: bytes
    too_long: bool = False


async def line_batches(
    path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> AsyncIterator[list[tuple[int, bytes | None]]]:
    """Per chunk read, its complete non-blank lines as (1-based number, bytes).

    The bytes are None for a line longer than max_line_bytes, which is never buffered whole.
    """
    try:
        f = await aiofiles.open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read input file {path}: {e.strerror or e}") from None
    number = 0
    pending: list[bytes] = []  # the start of a line that continues in the next chunk
    pending_len = 0
    too_long = False
    first = True
    try:
        while chunk := await f.read(CHUNK):
            if first:  # files saved by Windows tools often start with a UTF-8 byte-order mark
                first = False
                if chunk.startswith(b"\xef\xbb\xbf"):
                    chunk = chunk[3:]
            pieces = chunk.split(b"\n")
            tail = pieces.pop()
            out: list[tuple[int, bytes | None]] = []
            for piece in pieces:
                number += 1
                if pending or too_long:
                    if too_long or pending_len + len(piece) > max_line_bytes:
                        out.append((number, None))
                    else:
                        line = b"".join(pending) + piece
                        if not line.isspace():
                            out.append((number, line))
                    pending, pending_len, too_long = [], 0, False
                elif len(piece) > max_line_bytes:
                    out.append((number, None))
                elif piece and not piece.isspace():
                    out.append((number, piece))
            if tail and not too_long:
                pending_len += len(tail)
                if pending_len > max_line_bytes:
                    pending, too_long = [], True
                else:
                    pending.append(tail)
            if out:
                yield out
        if too_long:
            yield [(number + 1, None)]
        elif pending:
            line = b"".join(pending)
            if not line.isspace():
                yield [(number + 1, line)]
    finally:
        await f.close()


async def raw_lines(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> AsyncIterator[RawLine]:
    """The non-blank lines of a file one by one (a convenience over line_batches)."""
    async for batch in line_batches(path, max_line_bytes):
        for number, data in batch:
            yield RawLine(number, b"" if data is None else data, too_long=data is None)


class KeySet:
    """The record keys seen so far, as 64-bit hashes in one open-addressing array.

    About 16 bytes a key instead of ~100 for a set of str, so memory stays flat on files of
    millions of records. Two different keys share a hash with odds of about n²/2⁶⁵ (1 in 10⁸ at
    a million keys); the price of that is one record reported as a duplicate key.
    """

    __slots__ = ("table", "mask", "n")

    def __init__(self, capacity: int = 1024) -> None:
        self.table = array("q", bytes(8 * capacity))
        self.mask = capacity - 1
        self.n = 0

    def add(self, key: str) -> bool:
        """Remember a key; False if it was already there."""
        h = hash(key) or 1  # 0 marks an empty slot
        table, mask = self.table, self.mask
        i = h & mask
        while True:
            v = table[i]
            if v == 0:
                table[i] = h
                self.n += 1
                if self.n * 2 > mask:
                    self._grow()
                return True
            if v == h:
                return False
            i = (i + 1) & mask

    def __contains__(self, key: str) -> bool:
        h = hash(key) or 1
        table, mask = self.table, self.mask
        i = h & mask
        while (v := table[i]) != 0:
            if v == h:
                return True
            i = (i + 1) & mask
        return False

    def __len__(self) -> int:
        return self.n

    def _grow(self) -> None:
        old = self.table
        size = len(old) * 2
        self.table = table = array("q", bytes(8 * size))
        self.mask = mask = size - 1
        for h in old:
            if h:
                i = h & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = h


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
            self.seen.add(_key(obj, n))

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
        key = _key(obj, n)
        if not self.seen.add(key):
            return invalid_result(n, f"duplicate key {key!r}")
        try:
            body = self._body(obj)
        except _Bad as e:
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
            est_input_tokens=prompt_tokens(body["messages"]),
            max_output_tokens=max_output_tokens(body, self.shaping.default_max_output),
        )

    def _body(self, obj: dict[str, Any]) -> dict[str, Any]:
        s = self.shaping
        if isinstance(obj.get("body"), dict) and ("url" in obj or "method" in obj):
            url = obj.get("url", "/v1/chat/completions")
            if not str(url).rstrip("/").endswith("/chat/completions"):
                raise _Bad(f"url {url!r} is not supported (only /v1/chat/completions)")
            body = dict(obj["body"])
            _check_messages(body.get("messages"))
        elif "messages" in obj:
            body = {k: v for k, v in obj.items() if k not in ("custom_id", "id")}
            _check_messages(body.get("messages"))
        else:
            body = {"messages": self._plain_messages(obj)}
            if isinstance(obj.get("model"), str):
                body["model"] = obj["model"]
        if "model" not in body and s.model:
            body["model"] = s.model
        if s.max_tokens is not None and "max_tokens" not in body:
            body["max_tokens"] = s.max_tokens
        return body

    def _plain_messages(self, obj: dict[str, Any]) -> list[dict[str, str]]:
        s = self.shaping
        if s.template is not None:
            try:
                user = s.template.format_map(obj)
            except KeyError as e:
                raise _Bad(f"template field {e.args[0]!r} is missing from the record") from None
            except (IndexError, ValueError, AttributeError) as e:
                raise _Bad(f"template cannot be filled from the record ({e})") from None
        elif isinstance(obj.get("text"), str):
            user = obj["text"]
        else:
            raise _Bad("no messages and no text field (pass --template to shape plain records)")
        messages = [{"role": "user", "content": user}]
        if s.system:
            messages.insert(0, {"role": "system", "content": s.system})
        return messages


class _Bad(Exception):
    pass


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _Bad("messages must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m:
            raise _Bad("every message must be an object with a role")


def _key(obj: dict[str, Any], line: int) -> str:
    v = obj.get("custom_id")
    if v is None or v == "":
        v = obj.get("id")
        if v is None or v == "":
            return f"line-{line}"
    return v if type(v) is str else str(v)


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


__all__ = ["KeySet", "LineParser", "RawLine", "Shaping", "line_batches", "raw_lines"]
