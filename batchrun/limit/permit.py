"""What a request takes from a limit (`Permit`), where a limit in force came from, and how the
server appears to count: the plain values the rate controller and its users share."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RateSource(StrEnum):
    """Where a limit in force came from."""

    FLAG = "flag"
    HEADERS = "headers"
    LEARNED = "learned"  # from 429s alone: the rate that got through


class Shape(StrEnum):
    """How the server appears to count, as far as its 429s tell."""

    UNKNOWN = "unknown"
    BUCKET = "bucket"  # sub-second waits: pace
    WINDOW = "window"  # waits of seconds: spend the window's budget, then wait


@dataclass(frozen=True, slots=True)
class Permit:
    """One request let go: what it reserved, and how much had been sent before it, so that the
    server's `remaining` in its answer can be set against what was sent after."""

    reserved: int
    sent_before: int
    tokens_before: int
    at: float
