"""The shadow file (`<output stem>.shadow.jsonl`) read back: what the shadow model was sent, what
it cost, and how often it agreed with the main answer.

Every line is a request billed, so requests and cost count every line; agreement counts a key's
last line (a record sent again by `--retry-failed` is compared once).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrun.results.answer import answer_object, answer_text
from batchrun.store.wire import read_result_lines

SAMPLES = 5  # records where the answers differ, kept to show


@dataclass(slots=True)
class ShadowFile:
    """The shadow file's figures."""

    model: str | None = None
    requests: int = 0  # HTTP requests its lines went through (attempts)
    answers: int = 0  # lines answered (a key sent twice counts twice: both were billed)
    rate_limited: int = 0
    known_cost_usd: float = 0.0
    unknown_cost: bool = False  # some answer had no price or no usage
    outcomes: dict[str, tuple[bool, bool | None]] = field(default_factory=dict)  # key -> (ok, agrees)
    differ: dict[str, str | None] = field(default_factory=dict)  # a few keys that differ: shadow answer
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the answer as a JSON object

    @property
    def answered(self) -> int:
        """Records with a shadow line (answered or failed)."""
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for ok, _ in self.outcomes.values() if not ok)

    @property
    def compared(self) -> int:
        return sum(1 for _, a in self.outcomes.values() if a is not None)

    @property
    def agreed(self) -> int:
        return sum(1 for _, a in self.outcomes.values() if a)

    def figures(self, model: str | None = None) -> dict[str, Any]:
        """The summary's `shadow`; `cost_usd` is None while any answer's cost is unknown, never $0."""
        compared = self.compared
        known = round(self.known_cost_usd, 8)
        return {
            "model": model or self.model, "answered": self.answered, "failed": self.failed,
            "compared": compared, "agreed": self.agreed,
            "agreement": round(self.agreed / compared, 6) if compared else None,
            "requests": self.requests, "rate_limited": self.rate_limited,
            "cost_usd": None if self.unknown_cost else known, "known_cost_usd": known,
        }


    def add_cost(self, summary: dict[str, Any]) -> None:
        """Count the shadow's cost in a summary's total and split (unknown: its model is named)."""
        known = round(self.known_cost_usd, 8)
        summary["cost_split_usd"] = {**summary.get("cost_split_usd", {}), "shadow": known}
        summary["total_cost_usd"] = round(summary["total_cost_usd"] + known, 8)
        if self.unknown_cost and self.model and self.model not in summary["unpriced_models"]:
            summary["unpriced_models"] = sorted([*summary["unpriced_models"], self.model])


def read_shadow(path: Path, answers: bool = False) -> ShadowFile | None:
    """The shadow file's figures (None when there is no file); with `answers`, a few differing
    answers and every answer that is a JSON object, for the report."""
    out = ShadowFile()
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; a missing file is no shadow)
    except FileNotFoundError:
        return None
    with contextlib.closing(f):
        for line in read_result_lines(f):
            r = line.result
            if r is None:
                continue
            out.model = r.model or out.model
            out.requests += r.attempts
            out.rate_limited += r.rate_limited
            out.answers += r.ok
            if r.cost_usd is not None:
                out.known_cost_usd += r.cost_usd
            elif r.ok:
                out.unknown_cost = True
            doc = orjson.loads(line.raw)
            agrees = doc["batchrun"].get("agrees")
            out.outcomes[r.key] = (r.ok, agrees if isinstance(agrees, bool) else None)
            if answers and r.ok:
                _keep_answer(out, r.key, agrees is False, doc)
    return out


def _keep_answer(out: ShadowFile, key: str, differs: bool, doc: dict[str, Any]) -> None:
    text = answer_text((doc.get("response") or {}).get("body"))
    if differs and (key in out.differ or len(out.differ) < SAMPLES):
        out.differ[key] = text
    obj = answer_object(text)
    if obj is not None:
        out.objects[key] = obj
