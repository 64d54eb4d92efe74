"""What a job found, not only how it ran: for answers that are JSON objects (a classification's
`category` and `urgency`), each field's most frequent values; with a shadow, where the two
models' values differ. Pure and bounded: a field keeps at most MAX_VALUES distinct values (the
rest count as "(other)") and at most MAX_FIELDS fields are followed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

MAX_FIELDS = 12
MAX_VALUES = 500
TOP = 5
OTHER = "(other)"
CUT = 60  # characters of a value shown


def value_text(v: Any) -> str:
    """A field's value as a short label: strings as they are, anything else as compact JSON."""
    text = v if isinstance(v, str) else orjson.dumps(v).decode()
    return text if len(text) <= CUT else text[: CUT - 1] + "…"


class FieldValues:
    """Counts of each top-level field's values over the answers that are JSON objects."""

    def __init__(self) -> None:
        self.answers = 0
        self.fields: dict[str, Counter[str]] = {}

    def add(self, obj: dict[str, Any]) -> None:
        """One answer."""
        self.answers += 1
        for name, v in obj.items():
            counts = self.fields.get(name)
            if counts is None:
                if len(self.fields) >= MAX_FIELDS:
                    continue
                counts = self.fields[name] = Counter()
            label = value_text(v)
            counts[label if label in counts or len(counts) < MAX_VALUES else OTHER] += 1

    def top(self) -> dict[str, Any]:
        """The report's `findings`: per field, its most frequent values and their counts."""
        return {"answers": self.answers,
                "fields": {name: [[v, n] for v, n in c.most_common(TOP)] for name, c in self.fields.items()}}


class FieldDiffs:
    """Per field, how often the shadow's value differs from the main answer's, and the commonest
    pairs (main value, shadow value)."""

    def __init__(self) -> None:
        self.compared: Counter[str] = Counter()
        self.differ: Counter[str] = Counter()
        self.pairs: dict[str, Counter[tuple[str, str]]] = {}

    def add(self, main: dict[str, Any], shadow: dict[str, Any]) -> None:
        """One record both models answered with a JSON object."""
        for name in list(dict.fromkeys([*main, *shadow]))[:MAX_FIELDS]:
            a, b = main.get(name), shadow.get(name)
            self.compared[name] += 1
            if a != b:
                self.differ[name] += 1
                pairs = self.pairs.setdefault(name, Counter())
                if len(pairs) < MAX_VALUES:
                    pairs[(value_text(a), value_text(b))] += 1

    def summary(self) -> dict[str, Any]:
        """Per field: compared, differ and the commonest differing pairs."""
        return {name: {"compared": n, "differ": self.differ[name],
                       "pairs": [[a, b, k] for (a, b), k in self.pairs.get(name, Counter()).most_common(TOP)]}
                for name, n in self.compared.items()}
