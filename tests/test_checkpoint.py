"""checkpoint and stats: bookkeeping, torn lines, rewrite for --retry-failed, locks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchrun.account.stats import Histogram, JobStats
from batchrun.errors import JobError
from batchrun.records import Result, Usage, invalid_result
from batchrun.store.lock import JobLock, lock_holder
from batchrun.store.recovery import rebuild_from_output, recover_output
from batchrun.store.state import Done, JobState
from batchrun.store.wire import result_line


def ok(line: int, model: str = "m") -> Result:
    return Result(key=f"k{line}", line=line, model=model, status_code=200, attempts=1,
                  latency_ms=100.0 + line, usage=Usage(10, 5), cost_usd=0.001)


def failed(line: int) -> Result:
    return Result(key=f"k{line}", line=line, model="m", status_code=500, attempts=3,
                  error_code="server_error", error_message="boom")


@given(st.sets(st.integers(min_value=1, max_value=100_000), max_size=200))
def test_done_bitmap_roundtrip(lines: set[int]) -> None:
    d = Done()
    for n in lines:
        d.add(n)
    d2 = Done.decode(d.encode())
    members = {i * 8 + b for i, byte in enumerate(d2.bits) if byte for b in range(8) if byte >> b & 1}
    assert members == lines


def test_stats_state_roundtrip_and_merge_is_consistent() -> None:
    s = JobStats()
    for r in [ok(1), ok(2, "x"), failed(3), invalid_result(4, "bad")]:
        s.add(r)
    s2 = JobStats.from_state(s.to_state())
    assert s2.to_state() == s.to_state()
    assert (s2.succeeded, s2.failed, s2.invalid, s2.done) == (2, 1, 1, 4)
    assert s2.models["m"].latency.percentile(0.5) == pytest.approx(101.0, rel=0.02)


def test_histogram_percentiles_within_two_percent() -> None:
    h = Histogram()
    for v in range(1, 1001):
        h.add(float(v))
    assert h.percentile(0.5) == pytest.approx(500, rel=0.02)
    assert h.percentile(0.95) == pytest.approx(950, rel=0.02)


def write_lines(path: Path, results: list[Result], torn: bytes = b"") -> None:
    path.write_bytes(b"".join(result_line(r) for r in results) + torn)


def test_recover_counts_lines_past_offset_and_cuts_torn_tail(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    first = [ok(1), ok(2)]
    write_lines(out, first)
    state = JobState({"size": 0}, {})
    recover_output(out, state)
    assert state.stats.done == 2 and state.output_offset == out.stat().st_size
    write_lines(out, first + [ok(3), failed(4)], torn=result_line(ok(5))[:40])
    n = recover_output(out, state)
    assert n == 2 and state.stats.done == 4 and 5 not in state.done
    assert out.read_bytes().endswith(b"\n") and state.output_offset == out.stat().st_size


def test_output_shorter_than_checkpoint_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    write_lines(out, [ok(1)])
    state = JobState({}, {}, output_offset=10_000)
    with pytest.raises(JobError, match="shorter"):
        recover_output(out, state)


def test_rebuild_drops_failed_lines_only(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    write_lines(out, [ok(1), failed(2), invalid_result(3, "bad"), ok(4)])
    state = JobState({}, {})
    dropped = rebuild_from_output(out, state, drop_failed=True)
    assert dropped == 1
    assert (state.stats.succeeded, state.stats.failed, state.stats.invalid) == (2, 0, 1)
    assert 2 not in state.done and all(n in state.done for n in (1, 3, 4))
    assert out.read_bytes().count(b"\n") == 3


def test_lock_refuses_second_holder_and_takes_over_stale(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    a = JobLock(path)
    a.acquire()
    assert lock_holder(path) == os.getpid()
    # another process cannot take it
    code = ("import sys; from pathlib import Path; from batchrun.store.lock import JobLock\n"
            "try:\n JobLock(Path(sys.argv[1])).acquire()\nexcept Exception as e:\n print(e); sys.exit(7)\n")
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert res.returncode == 7 and f"PID {os.getpid()}" in res.stdout
    a.release()
    assert lock_holder(path) is None
    # a lock file left by a dead process: taken over, with its PID noted
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    path.write_text(dead + "\n")
    b = JobLock(path)
    b.acquire()
    assert b.stale_pid == int(dead)
    b.release()


results_strategy = st.lists(
    st.tuples(st.booleans(), st.integers(0, 5000), st.integers(0, 500), st.sampled_from(["a", "b"])),
    min_size=1, max_size=40,
)


@given(results_strategy, st.integers(0, 10_000), st.integers(0, 39))
def test_recovery_after_a_crash_anywhere_is_exact_and_idempotent(
    tmp_path_factory: pytest.TempPathFactory, rows: list, cut: int, saved_after: int
) -> None:
    """Write lines, 'crash' at any byte, recover twice: every complete line counted exactly once."""
    out = tmp_path_factory.mktemp("ck") / "o.jsonl"
    results = [
        Result(key=f"k{i}", line=i + 1, model=m, status_code=200 if ok else 500, attempts=1,
               usage=Usage(tin, tout) if ok else Usage(), cost_usd=(tin + tout) * 1e-6 if ok else None,
               error_code=None if ok else "server_error", error_message=None if ok else "x")
        for i, (ok, tin, tout, m) in enumerate(rows)
    ]
    lines = [result_line(r) for r in results]
    data = b"".join(lines)
    cut = min(cut, len(data))
    out.write_bytes(data[:cut])
    # a checkpoint saved after some prefix of whole lines, never past what is on disk
    k = min(saved_after, len(lines))
    while sum(map(len, lines[:k])) > cut:
        k -= 1
    state = JobState({}, {})
    for r in results[:k]:
        state.record(r)
    state.output_offset = sum(map(len, lines[:k]))
    recover_output(out, state)
    whole = data[:cut].count(b"\n")
    assert state.stats.done == whole
    assert all(r.line in state.done for r in results[:whole])
    assert not any(r.line in state.done for r in results[whole:])
    assert out.read_bytes() == b"".join(lines[:whole])  # torn tail cut, nothing else touched
    again = JobState.from_bytes(state.to_bytes())
    recover_output(out, again)  # idempotent: a second recovery adds nothing
    assert again.stats.to_state() == state.stats.to_state()
    # cost sums match the lines
    expected = sum(r.cost_usd or 0.0 for r in results[:whole])
    assert state.stats.cost_usd == pytest.approx(expected, abs=1e-12)


def test_crash_between_retry_failed_steps_loses_nothing(tmp_path: Path) -> None:
    """Step 1 of --retry-failed saved (a checkpoint claiming nothing), then a crash: the next run
    recounts the old output whole."""
    out = tmp_path / "o.jsonl"
    write_lines(out, [ok(1), failed(2), ok(3)])
    state = JobState({}, {}, output_offset=0)  # what step 1 leaves behind
    recover_output(out, state)
    assert (state.stats.succeeded, state.stats.failed) == (2, 1)
    assert all(n in state.done for n in (1, 2, 3))
