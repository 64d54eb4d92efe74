"""The provider's enqueued-token limit as a pure scheduler: which waiting shards may be submitted
now, what a refusal teaches, when a shard is too big for the whole queue. No I/O; the time is
passed in.

A provider holds, per model, the prompt tokens of batches not yet finished (validating, in
progress, finalizing) under a limit (OpenAI's "batch queue limit": 2,000,000 tokens for
gpt-4o-mini at Tier 1); a batch past it is accepted, then fails validation with
`token_limit_exceeded`. Such a batch wrote no answer: its shard only waits. The limit is stated
(`--batch-queue-tokens`), or read from the refusal's message, or, where a provider words it
otherwise, taken as what we held when refused. A shard's tokens are counted as the server
counts them: the offline estimate times the server/estimate ratio of the lines answered so far.
With no limit known, batches are let in as the live limiter's slow start lets requests in: one
shard, then up to twice the tokens our batches were seen running at once, so a limit costs a
refusal or two to learn rather than one per shard.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchrun.batch.plan import CREATING, SUBMITTED, TERMINAL_STATES, UPLOADED, WRITTEN, ModelQueue, Shard

QUEUE_CODE = "token_limit_exceeded"
FIT = 0.9  # a split shard aims under this share of the queue: estimates wobble
SIZE_SLACK = 1.05  # slow start's doubling counts shards, which differ a little in tokens
WAIT_FIRST_S, WAIT_CAP_S = 30.0, 600.0  # refused with nothing of ours queued: others hold it

_LIMIT = (re.compile(r"limit:\s*([\d,.]+)\s*([km]?)\s*(?:enqueued\s+)?tokens", re.I),
          re.compile(r"limit of\s*([\d,.]+)\s*([km]?)\b", re.I))


def queue_refusal(batch: dict[str, Any]) -> str | None:
    """The message of a batch failed for the enqueued-token limit, None for any other batch."""
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    for e in data if isinstance(data, list) else ():
        if isinstance(e, dict) and e.get("code") == QUEUE_CODE:
            return str(e.get("message") or "")
    return None


def stated_limit(message: str) -> int | None:
    """The limit a refusal states: OpenAI's "Limit: 2,000,000 enqueued tokens", Azure's
    "the configured limit of 30K"; None when it states none."""
    for pattern in _LIMIT:
        m = pattern.search(message)
        if m:
            try:
                n = float(m.group(1).replace(",", ""))
            except ValueError:
                continue
            return int(n * {"k": 1_000, "m": 1_000_000}.get(m.group(2).lower(), 1))
    return None


def key(shard: Shard) -> str:
    """A shard's queue: its model (NAME/model under a provider, so per provider and model)."""
    return shard.model


def holds(shard: Shard) -> bool:
    """Whether a shard's batch counts against its queue: asked for and not yet ended."""
    return shard.phase == CREATING or (shard.phase == SUBMITTED and shard.status not in TERMINAL_STATES)


def waiting(shard: Shard) -> bool:
    """A shard not yet asked for at the provider."""
    return shard.phase in (WRITTEN, UPLOADED)


def ratio(q: ModelQueue) -> float:
    """The server's tokens per estimated token."""
    return q.real / q.est if q.est > 0 else 1.0


def cost(q: ModelQueue, shard: Shard) -> int:
    """A shard's prompt tokens as the server will count them."""
    return math.ceil(shard.tokens * ratio(q))


@dataclass
class Queues:
    """The queues of one plan; `stated(model)` is the user's limit for a model (None: not stated)."""

    queues: dict[str, ModelQueue]
    stated: Callable[[str], int | None] = lambda _model: None
    _seen: set[str] = field(default_factory=set)

    def of(self, shard: Shard) -> ModelQueue:
        """A shard's queue; a stated limit is taken the first time a run meets it (the user's word is
        newer than what an earlier run learned; a refusal teaches again)."""
        k = key(shard)
        q = self.queues.setdefault(k, ModelQueue())
        if k not in self._seen:
            self._seen.add(k)
            if (n := self.stated(shard.model)) is not None:
                q.limit, q.source = n, "stated"
        return q

    def held(self, shards: list[Shard]) -> dict[str, int]:
        """Tokens each queue holds of ours."""
        out: dict[str, int] = defaultdict(int)
        for s in shards:
            if holds(s):
                out[key(s)] += cost(self.of(s), s)
        return out

    def admit(self, shards: list[Shard], now: float) -> list[Shard]:
        """The waiting shards that may be submitted now, in plan order; per queue first come first
        served (a big shard is not passed by small ones for ever)."""
        held = self.held(shards)
        blocked: set[str] = set()
        out: list[Shard] = []
        for s in shards:
            k = key(s)
            if not waiting(s) or k in blocked:
                continue
            q, c = self.of(s), cost(self.of(s), s)
            # unknown: slow start, up to twice the most seen running at once (shards differ a little)
            full = held[k] + c > (q.limit if q.limit is not None else 2 * q.peak * SIZE_SLACK)
            if now < q.wait_until or (held[k] > 0 and full):
                blocked.add(k)
                continue
            held[k] += c
            out.append(s)
        return out

    def pieces(self, shard: Shard) -> int:
        """Into how many shards a waiting shard must be split to fit its whole queue (1: it fits)."""
        q = self.of(shard)
        c = cost(q, shard)
        if shard.requests < 2:
            return 1
        if q.too_big and shard.tokens >= q.too_big and q.est == 0:
            return min(shard.requests, math.ceil(shard.tokens / (q.too_big * FIT * FIT)))
        if q.limit is None or c <= q.limit:
            return 1
        return min(shard.requests, math.ceil(c / (q.limit * FIT)))

    def refused(self, shard: Shard, message: str, held: int, now: float) -> None:
        """Learn from a batch refused for the queue while our accepted batches held `held` tokens."""
        q = self.of(shard)
        q.refusals += 1
        said = stated_limit(message)
        if said is not None:
            q.limit, q.source = said, "message"
        else:  # what was queued when refused is at most the limit; alone, the shard is over it
            guess = held if held > 0 else max(1, cost(q, shard) // 2)
            q.limit, q.source = min(q.limit or guess, guess), "queued"
        if held > 0 or cost(q, shard) > q.limit:
            return  # explained: wait for our batches to finish, or split the shard to fit
        # refused alone though we count it under the limit: the server counts more than we do
        # (no line answered yet to tell by how much: the shard is split), or others hold the queue
        # (we can tell: wait by the clock)
        if q.est == 0:
            q.too_big = min(q.too_big or shard.tokens, shard.tokens)
        else:
            q.wait_s = min(WAIT_CAP_S, q.wait_s * 2 or WAIT_FIRST_S)
            q.wait_until = now + q.wait_s

    def accepted(self, shard: Shard, together: int) -> None:
        """Our batches past validation were seen holding `together` tokens at once."""
        q = self.of(shard)
        q.peak = max(q.peak, together)

    def answered(self, shard: Shard, lines: int, real_tokens: int) -> None:
        """`lines` of a shard answered with `real_tokens` prompt tokens by the server's count."""
        q = self.of(shard)
        if lines > 0 and shard.requests > 0 and real_tokens > 0 and shard.tokens > 0:
            q.est += round(shard.tokens * lines / shard.requests)
            q.real += real_tokens
            q.wait_s = 0.0  # the queue moves

    def next_wait(self, shards: list[Shard], now: float) -> float | None:
        """Seconds until a shard waiting by the clock may go, None when none waits by it."""
        times = [self.of(s).wait_until for s in shards if waiting(s) and self.of(s).wait_until > now]
        return min(times) - now if times else None

    def rows(self, shards: list[Shard]) -> list[dict[str, Any]]:
        """Per model: the queue's limit, what our batches hold of it, how many shards wait."""
        held = self.held(shards)
        out = []
        for k, q in sorted(self.queues.items()):
            out.append({"model": k, "limit": q.limit, "limit_source": q.source, "held": held.get(k, 0),
                        "waiting": sum(1 for s in shards if waiting(s) and key(s) == k),
                        "refusals": q.refusals, "ratio": round(ratio(q), 3)})
        return out
