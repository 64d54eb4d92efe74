"""The --template: checked once before anything is sent, then filled for each plain record.

A template is Python `str.format` text whose fields name the record's fields (`{text}`). A brace
meant literally, as in a JSON example (`{"label": "billing"}`), reads as a field; caught per
record it would turn every line into a bad line, so the whole template is checked up front.
A field is a name with at most a format spec (`{n:>5}`): `str.format`'s attribute and index
lookups (`{text.upper}`, `{text[0]}`) and conversions (`{text!r}`) work on Python objects and
would send their Python text (a bound method's repr, a quoted string), so they are refused.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from batchrun.errors import ConfigError
from batchrun.input.endpoints import BadBody

BRACES = "literal braces are written {{ and }}"

_FORMATTER = string.Formatter()

# Why each conversion is refused: a record's text should reach the API as it is, and a format
# spec ({n:>5}) is all the shaping a template needs.
_CONVERSIONS = {
    "r": "would send Python's repr (quotes and escapes) instead of the text",
    "a": "would send Python's ascii repr (quotes and escapes) instead of the text",
    "s": "changes nothing for record text",
}

# How many of a record's fields a message lists.
_SHOWN_FIELDS = 8


def template_fields(template: str) -> list[str]:
    """The record fields a template names, in order; raises ConfigError if it does not parse."""
    names: list[str] = []
    try:
        _collect(template, names, depth=0)
    except ValueError as e:
        raise ConfigError(f"--template does not parse as a template ({e}); {BRACES}") from None
    return names


def _collect(text: str, names: list[str], depth: int) -> None:
    for _literal, field, spec, conversion in _FORMATTER.parse(text):
        if field is None:
            continue
        # a quoted name is a JSON example's brace, not a lookup: named whole, the record check says
        # which field is missing and how to write the brace
        quoted = field.startswith(('"', "'"))
        name = field if quoted else field.split(".", 1)[0].split("[", 1)[0]
        if not name or name.isdigit():  # str.format's positional {} and {0}: a record has no order
            raise ConfigError(f"--template has a field without a name ({{{field}}}): name a field of the "
                              f"record, as in {{text}}; {BRACES}")
        if name != field:
            raise ConfigError(f"--template field {{{field}}} {_lookup(field, name)} the field "
                              f"{name!r}, which str.format does on Python objects (sending their Python "
                              f"text, not the record's value): name the field alone, as in {{{name}}}; "
                              f"{BRACES}")
        if conversion is not None:
            raise ConfigError(f"--template field {{{field}!{conversion}}} has a conversion, which "
                              f"{_CONVERSIONS.get(conversion, 'str.format does not know')}: name the "
                              f"field alone, as in {{{name}}}; {BRACES}")
        names.append(name)
        if spec and depth < 2:  # a format spec may hold fields of its own: {text:>{width}}
            _collect(spec, names, depth + 1)


def _lookup(field: str, name: str) -> str:
    return "indexes into" if field[len(name)] == "[" else "looks up an attribute of"


def check_template(template: str, record: Mapping[str, Any] | None, line: int | None = None) -> None:
    """Raise ConfigError, naming the bad field, unless the template parses and fills from `record`
    (the first plain record of the input, on `line`; None: there is none, only parsing counts)."""
    names = template_fields(template)
    if record is None:
        return
    where = "the first plain record" + (f" (line {line})" if line is not None else "")
    for name in names:
        if name not in record:
            fields = ", ".join(list(record)[:_SHOWN_FIELDS]) + (", ..." if len(record) > _SHOWN_FIELDS else "")
            raise ConfigError(f"--template names the field {name!r}, which {where} does not have "
                              f"(its fields: {fields or 'none'}); {BRACES}")
    try:
        template.format_map(record)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
        raise ConfigError(f"--template cannot be filled from {where} ({type(e).__name__}: {e}); "
                          f"{BRACES}") from None


def fill(template: str, record: Mapping[str, Any]) -> str:
    """The template filled from one record; raises BadBody, for that line's error, if it cannot be."""
    try:
        return template.format_map(record)
    except KeyError as e:
        raise BadBody(f"template field {e.args[0]!r} is missing from the record") from None
    except (IndexError, ValueError, AttributeError, TypeError) as e:
        raise BadBody(f"template cannot be filled from the record ({e})") from None
