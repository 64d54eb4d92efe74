"""`process --deadline`: the orchestration across the Batch API and live is not built yet; the
plan is available before anything is sent through `estimate --deadline`."""

from __future__ import annotations

from batchrun.config import RunConfig
from batchrun.errors import ConfigError


def refuse_deadline(cfg: RunConfig) -> None:
    """One sentence rather than a half-working run."""
    if cfg.deadline is not None:
        raise ConfigError("process --deadline is not yet available; use estimate --deadline to see the plan, "
                          "then run with --batch-api or live")
