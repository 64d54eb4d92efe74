"""`--chunk-long` wired: the parser that splits long plain records, and the send that answers
them piece by piece."""

from __future__ import annotations

from batchrun.account.pricing import PriceBook
from batchrun.config import RunConfig
from batchrun.input.chunks import ChunkingParser
from batchrun.input.shapes import LineParser
from batchrun.route.providers import Targets
from batchrun.send.chunked import Send, chunked
from batchrun.show.console import Display


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

    return ChunkingParser(plain.shaping, plain.max_line_bytes, cfg.chunk_share, window, unknown)


def job_send(cfg: RunConfig, send: Send) -> Send:
    """The workers' send: with --chunk-long, a split record goes piece by piece."""
    return chunked(send) if cfg.chunk_long else send
