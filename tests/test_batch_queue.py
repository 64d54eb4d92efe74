"""The Batch API at a real account's quotas: the enqueued-token limit (learned, stated, split to
fit), the batches-per-hour 429, and --max-cost reserved per shard; against the simulator on
127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from batchrun.sim.answers import read_ask

from .conftest import plain_records, read_results, write_jsonl
from .test_process import run

MODEL = "gpt-4o-mini"


def _sim_tokens(rows: list[dict[str, Any]]) -> int:
    """The prompt tokens the simulator counts for these plain records (one user message each)."""
    return sum(read_ask({"messages": [{"role": "user", "content": r["text"]}]}).prompt_tokens for r in rows)


def _run(sim: Any, inp: Path, *args: str) -> Any:
    return run([str(inp), "--base-url", sim.url, "--model", MODEL, "--batch-api", "--quiet",
                "--summary-json", str(inp.with_suffix(".summary.json")), *args])


def _once_and_succeeded(out: list[dict[str, Any]], n: int) -> None:
    assert Counter(o["custom_id"] for o in out) == Counter({f"r{i}": 1 for i in range(n)})
    assert all(o["error"] is None and o["response"]["status_code"] == 200 for o in out)


def test_a_queue_of_two_and_a_half_shards_runs_every_record_once(tmp_path: Path, sim_factory: Any) -> None:
    rows = plain_records(6000)
    limit = _sim_tokens(rows) * 25 // 120  # 2.5 shards of 500
    sim = sim_factory(batch_step_s=0.05, batch_queue_tokens=limit)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = _run(sim, inp, "--batch-size", "500")
    assert res.exit_code == 0, res.output
    _once_and_succeeded(read_results(tmp_path / "in.results.jsonl"), 6000)
    st = sim.stats
    assert st.requests == 0  # no live request
    assert st.batch_billed == 6000  # every line billed once
    assert st.batches_refused_queue <= 3
    assert st.batches_created == 12 + st.batches_refused_queue
