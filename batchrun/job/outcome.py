"""How a `process` run ended, whichever way it ran (live requests or the provider's Batch API):
the stop an error makes, the outcome, and --summary-json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from batchrun.errors import (
    AuthError,
    BatchrunError,
    BudgetReached,
    ProviderDown,
    QuotaExhausted,
    RetryableError,
    StopReason,
    UnknownModel,
    WaitTooLong,
)
from batchrun.show.console import Display

# The errors that stop the whole job, cleanly and resumably, rather than fail one record; the
# live pipeline and the Batch API flow both stop by this table.
STOPS: tuple[tuple[type[BatchrunError], StopReason], ...] = (
    (AuthError, StopReason.AUTH), (QuotaExhausted, StopReason.QUOTA), (BudgetReached, StopReason.BUDGET),
    (WaitTooLong, StopReason.WAIT), (ProviderDown, StopReason.UNAVAILABLE),
    (UnknownModel, StopReason.UNKNOWN_MODEL),
    (RetryableError, StopReason.UNAVAILABLE),  # past its retries (the Batch API's calls): the provider is down
)


def stop_reason(e: BatchrunError) -> StopReason | None:
    """The stop an error makes; None: it is no stop (a record's failure, or an error to raise)."""
    for kind, reason in STOPS:
        if isinstance(e, kind):
            return reason
    return None


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
