"""`--chunk-long`: a plain record whose filled prompt is over a share of its model's context
window becomes pieces that fit, each a request of its own with the template and `--system`
around it. Pure: the window is looked up through an injected function.

Splitting goes paragraph, then sentence, then word (a last resort for text without either),
packing neighbours greedily so there are as few pieces as fit. Chat bodies and Batch API lines
are never split: their messages are the user's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from batchrun.input.shapes import LineParser, Shaping, is_plain
from batchrun.input.template import template_fields
from batchrun.input.tokens import text_tokens
from batchrun.records import Record, Result

# Endpoints whose answer is text, so pieces' answers join; an embedding's vectors would not.
SPLITTABLE = ("chat", "completions", "responses")

_LEVELS = (re.compile(r"\n\s*\n"), re.compile(r"(?<=[.!?。！？])\s+"), re.compile(r"\s+"))
_JOINERS = ("\n\n", " ", " ")


@dataclass(frozen=True, slots=True)
class ChunkedRecord(Record):
    """A record sent as its pieces, in order; it is written once, when all are answered."""

    pieces: tuple[Record, ...] = ()


def split_text(text: str, most_tokens: int, level: int = 0) -> list[str]:
    """`text` in pieces of at most `most_tokens` estimated tokens each (at least one character)."""
    if text_tokens(text) <= most_tokens:
        return [text]
    if level == len(_LEVELS):  # one word longer than a piece: cut it by characters
        step = max(1, most_tokens * (4 if text.isascii() else 1))
        return [text[i:i + step] for i in range(0, len(text), step)]
    units = [u for u in _LEVELS[level].split(text) if u.strip()]
    if len(units) <= 1:
        return split_text(text, most_tokens, level + 1)
    joiner = _JOINERS[level]
    pieces: list[str] = []
    current: list[str] = []
    for unit in units:
        if text_tokens(unit) > most_tokens:
            if current:
                pieces.append(joiner.join(current))
                current = []
            pieces.extend(split_text(unit, most_tokens, level + 1))
            continue
        if current and text_tokens(joiner.join([*current, unit])) > most_tokens:
            pieces.append(joiner.join(current))
            current = []
        current.append(unit)
    if current:
        pieces.append(joiner.join(current))
    return pieces


class ChunkingParser(LineParser):
    """A LineParser whose plain records over `share` of their model's window come out as
    ChunkedRecords. `window(model)` is the model's context window in tokens, None if unknown;
    `unknown(model)` is told once per model whose window nobody knows."""

    def __init__(self, shaping: Shaping, max_line_bytes: int, share: float,
                 window: Callable[[str], int | None], unknown: Callable[[str], None]) -> None:
        super().__init__(shaping, max_line_bytes)
        self.share = share
        self.window = window
        self.unknown = unknown
        self._told: set[str] = set()

    def parse_line(self, n: int, data: bytes | None) -> Record | Result:
        rec = super().parse_line(n, data)
        if not isinstance(rec, Record) or rec.endpoint not in SPLITTABLE or data is None:
            return rec
        window = self.window(rec.model)
        if window is None:
            if rec.model not in self._told:
                self._told.add(rec.model)
                self.unknown(rec.model)
            return rec
        most = int(window * self.share)
        if rec.est_input_tokens <= most:
            return rec
        obj = orjson.loads(data)
        if not is_plain(obj):
            return rec
        pieces = self._pieces(rec, obj, most)
        if len(pieces) < 2:
            return rec
        return ChunkedRecord(rec.key, rec.line, rec.model, rec.body, rec.est_input_tokens, rec.max_output_tokens,
                             rec.endpoint, rec.route_value, rec.own_model, pieces=tuple(pieces))

    def _pieces(self, rec: Record, obj: dict[str, Any], most: int) -> list[Record]:
        """The record's longest text field split so that each filled prompt fits in `most`."""
        names = template_fields(self.shaping.template) if self.shaping.template else ["text"]
        texts = [k for k in dict.fromkeys(names) if isinstance(obj.get(k), str)]
        if not texts:
            return []
        name = max(texts, key=lambda k: len(obj[k]))
        around = rec.est_input_tokens - text_tokens(obj[name])  # template, system and framing
        if most - around < 16:  # the template alone nearly fills the window: splitting cannot help
            return []
        out = []
        for piece in split_text(obj[name], most - around):
            endpoint, body = self._body({**obj, name: piece})
            body["model"] = rec.model
            out.append(Record(rec.key, rec.line, rec.model, body, endpoint.prompt_tokens(body),
                              endpoint.max_output_tokens(body, self.shaping.default_max_output),
                              rec.endpoint, rec.route_value, rec.own_model))
        return out

