"""`--chunk-long` wired: the parser that splits long plain records, the send that answers them
piece by piece, and the file keeping answered pieces while the job runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from batchrun.account.pricing import PriceBook
from batchrun.config import RunConfig
from batchrun.input.shapes import LineParser
from batchrun.limit.budget import Budget
from batchrun.route.providers import Targets
from batchrun.show.console import Display
from batchrun.store.pieces import PieceLog, pieces_path
from batchrun.store.state import JobState

# Splitting and piecewise sending load only with --chunk-long: a plain job never imports them.
if TYPE_CHECKING:
    from batchrun.send.chunked import Send


def job_parser(cfg: RunConfig, prices: PriceBook, targets: Targets, display: Display) -> LineParser:
    """The job's line parser: with --chunk-long, one that splits records over chunk_share of
    their model's context window."""
    plain = cfg.parser()
    if not cfg.chunk_long:
        return plain

    def window(model: str) -> int | None:
        t = targets(model)
        return prices.context_window(t.model, t.provider)

    def unknown(model: str) -> None:
        display.warn(f"--chunk-long cannot split records for model {model!r}: its context window is unknown; "
                     f"state it in batchrun.toml as [context_windows] \"{model}\" = TOKENS")

    from batchrun.input.chunks import ChunkingParser

    return ChunkingParser(plain.shaping, plain.max_line_bytes, cfg.chunk_share, window, unknown)


class Chunking:
    """With --chunk-long, the workers' send goes piece by piece, keeping answered pieces in
    `<output>.pieces` while the job runs; without it, nothing changes."""

    def __init__(self, cfg: RunConfig, state: JobState, budget: Budget) -> None:
        self.on, self.fresh, self.state, self.budget = cfg.chunk_long, cfg.fresh, state, budget
        self.log = PieceLog(pieces_path(cfg.output))

    def wrap(self, send: Send) -> Send:
        if not self.on:
            return send
        from batchrun.send.chunked import chunked

        return chunked(send, self.log.answered, self.log.keep)

    @contextlib.contextmanager
    def kept(self, complete: Callable[[], bool]) -> Iterator[None]:
        """The pieces file open while the pipeline runs; gone once the job is complete."""
        if not self.on:
            yield
            return
        self.log.open(lambda line: line in self.state.done, self.fresh)
        self.budget.spent_usd += self.log.kept_cost_usd()  # paid by an earlier run
        try:
            yield
        except BaseException:
            self.log.close(False)
            raise
        self.log.close(complete())
