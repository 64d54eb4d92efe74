"""How a `process` run ended, whichever way it ran (live requests or the provider's Batch API)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from batchrun.errors import StopReason
from batchrun.show.console import Display


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: why it stopped (None: it read the whole input) and its summary."""

    stopped: StopReason | None
    all_ok: bool  # every record of the job succeeded
    summary: dict[str, Any]


def write_summary_json(path: Path | None, summ: dict[str, Any], display: Display) -> None:
    """--summary-json: written after every run, whatever its end; a failure to write it is a
    warning (the results and the checkpoint are what matter)."""
    if path is None:
        return
    try:
        path.write_bytes(orjson.dumps(summ, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as e:
        display.warn(f"cannot write --summary-json {path}: {e.strerror or e}")
