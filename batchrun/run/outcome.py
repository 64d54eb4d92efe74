"""How a `process` run ended, whichever way it ran (live requests or the provider's Batch API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchrun.errors import StopReason


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: why it stopped (None: it read the whole input) and its summary."""

    stopped: StopReason | None
    all_ok: bool  # every record of the job succeeded
    summary: dict[str, Any]
