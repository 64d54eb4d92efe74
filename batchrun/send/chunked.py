"""`--chunk-long`: a ChunkedRecord's pieces sent in order, each as a record of its own (budget,
limiter, retries and fallbacks count each piece), and their answers made into the record's one
Result: every piece's answer in order, usage and cost summed, `chunks` the number of pieces.

The pieces go one after another inside the record's worker, so the record holds one request in
flight at a time and is written once, when its last piece is answered; each piece answered before
that is kept (`store.pieces`), so a crash re-sends only the piece in flight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import orjson

from batchrun.input.chunks import ChunkedRecord
from batchrun.records import Record, Result, Usage

Send = Callable[[Record], Awaitable[Result]]
Answered = Callable[[Record, int], Result | None]  # a piece's answer kept by an earlier run
Keep = Callable[[Record, int, Result], None]  # keep an answered piece until its record is written

CHUNKS_OBJECT = b"batchrun.chunks"  # the body a chunked answer is written as: {"object", "chunks": [...]}


def chunked(send: Send, answered: Answered = lambda r, i: None, keep: Keep = lambda r, i, a: None) -> Send:
    """`send`, with ChunkedRecords sent piece by piece; a piece already answered is not sent."""

    async def each(rec: Record) -> Result:
        if not isinstance(rec, ChunkedRecord):
            return await send(rec)
        answers: list[Result] = []
        for i, piece in enumerate(rec.pieces):
            r = answered(piece, i)
            if r is None:
                r = await send(piece)
                if r.ok and i + 1 < len(rec.pieces):
                    keep(piece, i, r)
            if not r.ok:  # the record fails as its piece did; what the others cost still counts
                msg = f"piece {i + 1} of {len(rec.pieces)}: {r.error_message}"
                return dataclasses.replace(_summed(r, answers), error_message=msg, chunks=len(rec.pieces))
            answers.append(r)
        last = answers[-1]
        raw = b'{"object":"' + CHUNKS_OBJECT + b'","chunks":[' + b",".join(_raw(r) for r in answers) + b"]}"
        return dataclasses.replace(_summed(last, answers[:-1]), raw_body=raw, body=None, chunks=len(answers),
                                   request_id=answers[0].request_id, started_at=answers[0].started_at)

    return each


def _raw(r: Result) -> bytes:
    return r.raw_body if r.raw_body is not None else orjson.dumps(r.body)


def _summed(r: Result, before: list[Result]) -> Result:
    """`r` with the usage, cost, attempts and waits of the pieces answered before it added."""
    every = [*before, r]
    costs = [x.cost_usd for x in every if x.ok]  # a failed piece was not billed
    return dataclasses.replace(
        r,
        usage=Usage(sum(x.usage.input_tokens for x in every), sum(x.usage.output_tokens for x in every),
                    sum(x.usage.cached_tokens for x in every)),
        cost_usd=r.cost_usd if not costs or None in costs else sum(c for c in costs if c is not None),
        attempts=sum(x.attempts for x in every), latency_ms=sum(x.latency_ms for x in every),
        rate_limited=sum(x.rate_limited for x in every),
        fallbacks=tuple(f for x in every for f in x.fallbacks),
        unmetered=any(x.unmetered for x in every),
        started_at=before[0].started_at if before else r.started_at,
    )
