"""The check every routing table starts with: a table, and only keys it knows."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from batchrun.errors import ConfigError


def known_table(t: Any, here: str, keys: Collection[str]) -> dict[str, Any]:
    """`t` as a table; ConfigError naming `here` (`config file X: [canary]`) and the first
    unknown key otherwise."""
    if not isinstance(t, dict):
        raise ConfigError(f"{here} must be a table")
    unknown = sorted(set(t) - set(keys))
    if unknown:
        raise ConfigError(f"{here}: unknown key {unknown[0]!r} (expected {', '.join(sorted(keys))})")
    return t
