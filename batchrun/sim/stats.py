"""What the simulator saw, measured at the server, for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Per-request lists stop growing here, so a long benchmark cannot exhaust memory.
MAX_SAMPLES = 1_000_000


@dataclass
class SimStats:
    """Counters the server adds to as requests come (mutable: the server is its only writer)."""

    requests: int = 0  # received
    ok: int = 0  # successful answers generated (as billed)
    statuses: Counter[int] = field(default_factory=Counter)  # 0: connection reset
    by_prompt: Counter[str] = field(default_factory=Counter)
    ok_by_prompt: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rate_limited: int = 0  # 429s of every kind: limiter, injected, out of quota
    billed: int = 0  # answers generated, whether or not the client was still there to read them
    billed_by_prompt: Counter[str] = field(default_factory=Counter)  # twice for one prompt shows 2
    billed_unsent: int = 0  # billed answers whose client had gone before the body was written
    concurrent_max: int = 0  # most requests being answered at once
    first_request_at: float | None = None  # monotonic
    # (monotonic time, requests charged, tokens charged) per request the limiter admitted: a
    # benchmark divides what was admitted by what the limit allowed since first_request_at.
    admitted: list[tuple[float, int, int]] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)  # monotonic, per successful answer
    ok_charged: list[int] = field(default_factory=list)  # tokens counted against tpm, per answer
    # the Batch API's work, apart from the live requests above
    files_uploaded: int = 0
    batches_created: int = 0
    batches_refused_queue: int = 0  # failed validation for the enqueued-token limit
    batches_rate_limited: int = 0  # POST /batches answered 429 (batches per hour)
    batch_billed: int = 0  # batch lines answered (billed at the batch price)
    flex_billed: int = 0  # answers served at flex processing (service_tier "flex")
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    # per endpoint name: answers billed and their prompt and completion tokens
    by_endpoint: dict[str, Counter[str]] = field(default_factory=dict)

    def received(self, now: float) -> None:
        """Count one request arriving at monotonic time `now`."""
        self.requests += 1
        if self.first_request_at is None:
            self.first_request_at = now

    def admit(self, now: float, tokens: int) -> None:
        """Note a request the limiter let through."""
        if len(self.admitted) < MAX_SAMPLES:
            self.admitted.append((now, 1, tokens))

    def answered(self, status: int) -> None:
        """Count an answer's status (0 for a connection reset)."""
        self.statuses[status] += 1
        if status == 429:
            self.rate_limited += 1

    def bill(self, prompt: str, prompt_tokens: int, completion_tokens: int, charged: int, now: float,
             endpoint: str = "chat") -> None:
        """Count an answer generated: it is billed even if nobody reads it."""
        ep = self.by_endpoint.get(endpoint) or self.by_endpoint.setdefault(endpoint, Counter())
        ep["billed"] += 1
        ep["prompt_tokens"] += prompt_tokens
        ep["completion_tokens"] += completion_tokens
        self.ok += 1
        self.billed += 1
        self.ok_by_prompt[prompt] += 1
        self.billed_by_prompt[prompt] += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if len(self.ok_times) < MAX_SAMPLES:
            self.ok_times.append(now)
            self.ok_charged.append(charged)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for GET /_sim/stats."""
        return {
            "requests": self.requests,
            "ok": self.ok,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "by_prompt": dict(self.by_prompt),
            "ok_by_prompt": dict(self.ok_by_prompt),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "rate_limited": self.rate_limited,
            "billed": self.billed,
            "billed_by_prompt": dict(self.billed_by_prompt),
            "billed_unsent": self.billed_unsent,
            "concurrent_max": self.concurrent_max,
            "first_request_at": self.first_request_at,
            "admitted": self.admitted,  # orjson writes each tuple as an array
            "ok_times": self.ok_times,
            "ok_charged": self.ok_charged,
            "files_uploaded": self.files_uploaded,
            "batches_created": self.batches_created,
            "batches_refused_queue": self.batches_refused_queue,
            "batches_rate_limited": self.batches_rate_limited,
            "batch_billed": self.batch_billed,
            "flex_billed": self.flex_billed,
            "batch_prompt_tokens": self.batch_prompt_tokens,
            "batch_completion_tokens": self.batch_completion_tokens,
            "by_endpoint": {name: dict(c) for name, c in self.by_endpoint.items()},
        }
