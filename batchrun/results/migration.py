"""The migration told afterwards, for `report`: the canary beside its baseline and what was
decided, the shadow's agreement with records where the answers differ, every provider's figures,
and what the answers found (`findings`).

Read from the results file's lines (fed one at a time), and from the checkpoint and the shadow
file beside it where they still are: the canary's decision lives in the checkpoint, the shadow's
answers in their own file. A results file alone still gives the arms and the findings.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrun.account.providers import Traffic, job_traffic, provider_rows
from batchrun.account.stats import JobStats
from batchrun.records import Result
from batchrun.results.answer import answer_object, answer_text
from batchrun.results.findings import FieldDiffs, FieldValues
from batchrun.results.shadow_file import ShadowFile, read_shadow
from batchrun.route.arms import Arms
from batchrun.route.providers import Targets
from batchrun.store.files import shadow_path
from batchrun.store.state import checkpoint_path

CUT = 240  # characters of an answer shown where the two models differ
# a JSON string value that opens an object or a code fence: the only answers answer_object reads
_MAY_HOLD_OBJECT = re.compile(rb'":\s*"(?:\s|\\[nrt])*(?:\{|```)')


def cut(text: str | None) -> str | None:
    """An answer cut short for the page."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= CUT else text[: CUT - 1] + "…"


@dataclass(slots=True)
class Beside:
    """What the checkpoint beside a results file keeps of the migration (empty when it is gone)."""

    canary: dict[str, Any] = field(default_factory=dict)
    providers: set[str] = field(default_factory=set)
    abandoned: dict[str, list[int]] = field(default_factory=dict)


def read_beside(results: Path) -> Beside:
    """The canary's state, the providers' names and the requests a stop let go, from the checkpoint."""
    try:
        doc = orjson.loads(checkpoint_path(results).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return Beside()
    if not isinstance(doc, dict):
        return Beside()
    identity, stats, canary = (_table(doc.get(k)) for k in ("identity", "stats", "canary"))
    names = {p["name"] for p in identity.get("providers") or () if isinstance(p, dict) and "name" in p}
    beside = Beside(canary, names)
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        beside.abandoned = {str(k): [int(v[0]), int(v[1])] for k, v in (stats.get("abandoned") or {}).items()}
    return beside


def _table(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


class MigrationReader:
    """Fed every result line of a report; gives the report's `migration` and `findings`."""

    def __init__(self, results: Path) -> None:
        self.beside = read_beside(results)
        self.shadow: ShadowFile | None = read_shadow(shadow_path(results), answers=True)
        self.arms = Arms()
        self.fields = FieldValues()
        self.diffs = FieldDiffs()
        self.main_text: dict[str, str | None] = {}  # the main answers of the differing samples
        self.seen_providers: set[str] = set()
        self.canary_model: str | None = None
        self.change_at = self.beside.canary.get("at")
        self.before_change = 0  # lines written before the canary's decision

    def add(self, raw: bytes, r: Result, at: float | None) -> None:
        """One result line of the main output; `at` is when it was written."""
        if r.route is not None:
            self.arms.add(r)
            if r.route == "canary" and self.canary_model is None:
                self.canary_model = r.fallbacks[0].from_model if r.fallbacks else r.model
        if r.provider:
            self.seen_providers.add(r.provider)
        if isinstance(self.change_at, int | float) and at is not None and at <= self.change_at:
            self.before_change += 1
        shadow = self.shadow
        wanted = shadow is not None and r.key in shadow.differ
        if not r.ok or r.invalid or not (wanted or _MAY_HOLD_OBJECT.search(raw)):
            return  # an answer that cannot be a JSON object is not parsed: the report stays quick
        doc = orjson.loads(raw)
        text = answer_text((doc.get("response") or {}).get("body"))
        if wanted:
            self.main_text[r.key] = text
        obj = answer_object(text)
        if obj is not None:
            self.fields.add(obj)
            if shadow is not None and r.key in shadow.objects:
                self.diffs.add(obj, shadow.objects[r.key])

    def data(self, stats: JobStats) -> dict[str, Any]:
        """The report's `findings` and, for a run with a canary or a shadow, its `migration`."""
        findings = {**self.fields.top(), "shadow_differs": self.diffs.summary()}
        out: dict[str, Any] = {"findings": findings}
        canary = self._canary()
        if canary is None and self.shadow is None:
            return out
        out["migration"] = {"canary": canary, "shadow": self._shadow(), "providers": self._providers(stats)}
        return out

    def _canary(self) -> dict[str, Any] | None:
        c = self.beside.canary
        if not c and not self.arms.canary.records:
            return None
        return {
            "model": c.get("model") or self.canary_model, "state": c.get("state", "unknown"),
            "share": c.get("share"), "reason": c.get("reason"), "changed_at": c.get("at"),
            "judged": c.get("judged"), "records_at_change": c.get("records"), "threshold": c.get("threshold"),
            "thresholds": c.get("thresholds"), "steps": c.get("steps") or [], "first_share": c.get("first_share"),
            "records_before_change": self.before_change if c.get("at") is not None else None,
            "baseline": self.arms.baseline.figures(), "canary": self.arms.canary.figures(),
        }

    def _shadow(self) -> dict[str, Any] | None:
        s = self.shadow
        if s is None:
            return None
        differ = [{"key": k, "main": cut(self.main_text.get(k)), "shadow": cut(text)} for k, text in s.differ.items()]
        return {**s.figures(), "differ": differ}

    def _providers(self, stats: JobStats) -> dict[str, dict[str, Any]]:
        traffic = job_traffic(stats)
        for model, (requests, limited) in self.beside.abandoned.items():
            traffic.append(Traffic(model, requests, 0, limited, 0.0))
        s = self.shadow
        if s is not None and s.model is not None:
            traffic.append(Traffic(s.model, s.requests, s.answers, s.rate_limited,
                                   None if s.unknown_cost else s.known_cost_usd, shadow=True))
        targets = Targets(self.beside.providers | self.seen_providers)
        return provider_rows(traffic, lambda model: targets(model).provider or "default")
