"""A --batch-api job's batches as plain lines: in `status`, and `batchrun batches`. Pure."""

from __future__ import annotations

from typing import Any


def format_batch_row(b: dict[str, Any]) -> str:
    """One provider batch of a --batch-api job: its state and request counts."""
    c = b.get("request_counts") or {}
    counts = f", {c.get('completed', 0)}/{c['total']} done, {c.get('failed', 0)} failed" if c.get("total") else ""
    where = f" as {b['batch_id']}" if b.get("batch_id") else ""
    return (f"batch {b['shard']}: {b['requests']} request(s) to {b['model']}{where}: {b['phase']}"
            + (f", {b['status']}" if b.get("status") else "") + counts + (f" ({b['note']})" if b.get("note") else ""))


_SOURCES = {"stated": "stated", "message": "from the provider's refusal", "queued": "what was queued when refused"}


def format_queue_row(q: dict[str, Any]) -> str:
    """One model's batch queue: its limit, what our batches hold of it, the shards waiting for it."""
    limit = "not known yet" if q["limit"] is None else f"{q['limit']:,} tokens ({_SOURCES.get(q['limit_source'], '?')})"
    return (f"batch queue {q['model']}: limit {limit}, {q['held']:,} held by this job's batches, "
            f"{q['waiting']} shard(s) waiting, {q['refusals']} batch(es) refused for it")


def format_batches(data: dict[str, Any]) -> list[str]:
    """`batchrun batches` as plain lines: one per batch, then what was cancelled."""
    lines = [f"job {data['job_id']} ({data['input']}): {len(data['batches'])} batch(es) at the provider"]
    for b in data["batches"]:
        c = b.get("request_counts") or {}
        age = "?" if b["age_s"] is None else f"{b['age_s'] // 3600}h{b['age_s'] % 3600 // 60:02d}m"
        lines.append(f"{b['batch_id']} (shard {b['shard']}, {b['model']}): {b['status']}, {c.get('completed', 0)}/"
                     f"{c.get('total', 0)} done, {c.get('failed', 0)} failed, age {age}, "
                     f"{b['tokens_queued']:,} tokens queued" + (f"; {b['errors']}" if b.get("errors") else ""))
    if data["cancelled"]:
        lines.append(f"cancelled {len(data['cancelled'])} running batch(es): what they answered is kept; run the "
                     "job again to collect it (their unanswered lines go into new batches)")
    return lines


def format_counts(counts: dict[str, int]) -> str:
    """A batch's request counts in a few words."""
    total = counts.get("total", 0)
    return f"{counts.get('completed', 0)}/{total} done, {counts.get('failed', 0)} failed" if total else "queued"
