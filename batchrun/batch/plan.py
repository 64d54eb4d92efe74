"""A Batch API job's plan: its shards and how far each has gone, kept in the checkpoint.

Each step is written to the checkpoint as soon as it happens, before the next one starts:

    written -> uploaded (file_id) -> creating (about to POST /batches) -> submitted (batch_id)
            -> collected (its output is in the results file)

A shard found in `creating` after a crash may have a batch at the provider that we never heard
of: it is looked for by its metadata (`batchrun_job` + `batchrun_shard`) before another is made.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WRITTEN, UPLOADED, CREATING, SUBMITTED, COLLECTED = "written", "uploaded", "creating", "submitted", "collected"
# A shard that ran out of batch rounds, or whose lines go through the live API instead.
LIVE = "live"
SPLIT = "split"  # too big for its model's whole batch queue: its requests went into smaller shards
TERMINAL_STATES = ("completed", "failed", "expired", "cancelled")
MAX_ROUNDS = 3  # batches one line may go through (expiry, cancel) before it is failed


@dataclass(slots=True)
class Shard:
    """One batch input file and its batch."""

    id: str
    endpoint: str  # a name in input.endpoints.ENDPOINTS
    model: str
    requests: int
    bytes: int
    round: int = 1  # 2 and more: made of the unanswered lines of an earlier shard
    phase: str = WRITTEN
    file_id: str | None = None
    batch_id: str | None = None
    creating_at: float | None = None  # epoch seconds: when the batch's creation was asked for
    status: str | None = None  # the provider's state of the batch
    counts: dict[str, int] = field(default_factory=dict)  # request_counts
    note: str | None = None  # why a batch ended as it did, for status
    provider: str | None = None  # a [providers] name (`model` is then NAME/model); None: --base-url
    tokens: int = 0  # the offline estimate of its prompt tokens (what it holds of the model's queue)
    out_cap: int = 0  # the output tokens its requests may produce at most (their caps)
    refused: list[str] = field(default_factory=list)  # its batches that failed for the queue, not its lines

    @property
    def open(self) -> bool:
        """Not yet collected: the job is not done while any shard is open."""
        return self.phase not in (COLLECTED, SPLIT)


@dataclass(slots=True)
class ModelQueue:
    """What is known of one provider + model's enqueued-token limit (batch/scheduling/queue.py decides by it)."""

    limit: int | None = None  # in the server's tokens; None: not known yet
    source: str | None = None  # "stated" (--batch-queue-tokens), "message" (a refusal said it), "queued"
    est: int = 0  # the offline estimate of the prompt tokens of lines answered so far
    real: int = 0  # the server's count of the same prompts
    refusals: int = 0  # batches refused for the queue
    too_big: int = 0  # the estimate of the smallest shard refused with nothing of ours queued (0: none)
    peak: int = 0  # the most tokens our accepted batches held at once (no limit known: up to twice it)
    wait_until: float = 0.0  # epoch seconds: refused while nothing of ours held the queue
    wait_s: float = 0.0


@dataclass(slots=True)
class Plan:
    """All shards of a job, and the random id that names this job in batch metadata."""

    job_id: str
    sharded: bool = False  # every input line is in a shard, written or invalid
    shards: list[Shard] = field(default_factory=list)
    queues: dict[str, ModelQueue] = field(default_factory=dict)  # by model (NAME/model for a provider)

    @classmethod
    def new(cls) -> Plan:
        """A plan for a job starting now (a new id: a --fresh job never picks up the old one's batches)."""
        return cls(job_id=os.urandom(8).hex())

    @property
    def open(self) -> list[Shard]:
        """Shards not yet collected."""
        return [s for s in self.shards if s.open]

    def rows(self) -> list[dict[str, Any]]:
        """Each shard and its batch, for the summary and `status`."""
        return [{"shard": s.id, "model": s.model, "endpoint": s.endpoint, "requests": s.requests, "round": s.round,
                 "phase": s.phase, "batch_id": s.batch_id, "status": s.status, "request_counts": s.counts,
                 "note": s.note} for s in self.shards]

    def to_state(self) -> dict[str, Any]:
        """The checkpoint's `batch` entry."""
        return {"job_id": self.job_id, "sharded": self.sharded, "shards": [asdict(s) for s in self.shards],
                "queues": {k: asdict(q) for k, q in self.queues.items()}}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Plan | None:
        """The plan in a checkpoint, None when the job has none (a live job, or an old checkpoint)."""
        if not d or "job_id" not in d:
            return None
        return cls(str(d["job_id"]), bool(d.get("sharded")), [Shard(**s) for s in d.get("shards") or ()],
                   {k: ModelQueue(**q) for k, q in (d.get("queues") or {}).items()})


def shard_dir(checkpoint: Path) -> Path:
    """Where a job's shard, index and downloaded files live: beside its checkpoint."""
    return checkpoint.with_name(checkpoint.name.removesuffix(".checkpoint") + ".batches")


@dataclass(frozen=True, slots=True)
class ShardFiles:
    """The files of one shard."""

    requests: Path  # the batch input file, uploaded as is
    index: Path  # one [line, key, model] per request, in the same order
    output: Path  # the provider's output file, downloaded
    errors: Path  # the provider's error file, downloaded

    @classmethod
    def of(cls, directory: Path, shard_id: str) -> ShardFiles:
        """The files of shard `shard_id` in `directory`."""
        return cls(directory / f"{shard_id}.jsonl", directory / f"{shard_id}.index.jsonl",
                   directory / f"{shard_id}.output.jsonl", directory / f"{shard_id}.errors.jsonl")
