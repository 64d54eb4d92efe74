"""What a response says of the limits: OpenAI's `x-ratelimit-*` headers.

https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers:
`x-ratelimit-limit-{requests,tokens}`, `x-ratelimit-remaining-{requests,tokens}` and
`x-ratelimit-reset-{requests,tokens}` in Go duration form (`6m0s`, `1s`, `120ms`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Seconds in an OpenAI reset value: `6m0s`, `1s`, `120ms`, `1h2m3.5s`, or plain seconds."""
    text = text.strip()
    if text[-1:].isdigit():  # plain seconds; OpenAI's `1s`, `6m0s`, `120ms` skip the float attempt
        try:
            return max(0.0, float(text))
        except ValueError:
            return None
    total, pos = 0.0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        value, unit = float(m.group(1)), m.group(2)
        total += value * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[unit]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """What one response said about the limits."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None


def _num(headers: Mapping[str, str], name: str) -> int | None:
    v = headers.get(name)
    if v is None:
        return None
    try:
        return int(float(v))
    except ValueError:
        return None


def _dur(headers: Mapping[str, str], name: str) -> float | None:
    v = headers.get(name)
    return parse_duration(v) if v is not None else None


def parse_rate_headers(headers: Mapping[str, str]) -> RateHeaders | None:
    """The rate-limit headers of a response, or None when it sent none."""
    if "x-ratelimit-limit-requests" not in headers and "x-ratelimit-limit-tokens" not in headers:
        if "x-ratelimit-remaining-requests" not in headers:
            return None
    return RateHeaders(
        _num(headers, "x-ratelimit-limit-requests"),
        _num(headers, "x-ratelimit-remaining-requests"),
        _dur(headers, "x-ratelimit-reset-requests"),
        _num(headers, "x-ratelimit-limit-tokens"),
        _num(headers, "x-ratelimit-remaining-tokens"),
        _dur(headers, "x-ratelimit-reset-tokens"),
    )

