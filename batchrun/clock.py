"""Timestamps shown to people and kept in the checkpoint."""

from __future__ import annotations

import time


def now_iso() -> str:
    """UTC timestamp for last_run."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

