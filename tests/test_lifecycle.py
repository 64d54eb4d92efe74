"""The job's lifecycle and its one results writer, in-process over the transport seam (no server,
milliseconds): every record written once, a stop that drains, a write that fails, signals, the
last save; and, end to end against the simulator, a Batch API rerun whose progress and summary
count the same records."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from batchrun.account.pricing import PriceBook
from batchrun.config import RunConfig
from batchrun.errors import AuthError, StopReason
from batchrun.input.shapes import LineParser, Shaping
from batchrun.job.lifecycle import JobClock, job_figures, run_lifecycle, running
from batchrun.job.outcome import stop_reason
from batchrun.job.pipeline import Pipeline
from batchrun.limit.budget import Budget
from batchrun.limit.limiter import Limiters
from batchrun.secret import ApiKey
from batchrun.send.client import Client
from batchrun.send.retry import RetryPolicy
from batchrun.send.sender import Sender
from batchrun.send.transport import MockTransport, Reply, Request
from batchrun.show.console import Display, DisplayMode
from batchrun.show.progress import ProgressFigures
from batchrun.store.opening import JobFiles
from batchrun.store.output import ResultsFile
from batchrun.store.state import JobState, load_state

from .conftest import plain_records, read_results, write_jsonl
from .test_process import KEY, run

DEV_FULL = Path("/dev/full")  # every write: ENOSPC
OK = {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}


def _sender(handler: Callable[[Request], Any]) -> tuple[Sender, MockTransport]:
    transport = MockTransport(handler)
    client = Client(None, "http://nowhere.invalid/v1", ApiKey("sk-test"), 5.0, transport=transport)
    return Sender(client, Limiters(ceiling=8), PriceBook(use_snapshot=False), Budget(None),
                  RetryPolicy(max_attempts=2, base_s=0.001), rng=random.Random(0)), transport


async def _lines(n: int) -> AsyncIterator[list[tuple[int, bytes | None]]]:
    yield [(i, json.dumps({"id": f"r{i}", "text": f"t{i}"}).encode()) for i in range(n)]


def _pipeline(tmp_path: Path, handler: Callable[[Request], Any], n: int,
              output: Path | None = None) -> tuple[Pipeline, JobState, ResultsFile, MockTransport]:
    state = JobState(input_fingerprint={}, identity={})
    results = ResultsFile(output or tmp_path / "out.jsonl", tmp_path / "out.jsonl.checkpoint", state, state.to_bytes)
    sender, transport = _sender(handler)
    pipe = Pipeline(_lines(n), LineParser(Shaping(model="m")), sender, state, results, concurrency=4)
    return pipe, state, results, transport


async def test_every_record_is_written_once_and_the_offset_is_the_files_size(tmp_path: Path) -> None:
    pipe, state, results, transport = _pipeline(tmp_path, lambda r: Reply.json(200, OK), 50)
    await pipe.run()
    results.save()
    results.close()
    out = read_results(tmp_path / "out.jsonl")
    assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(50))
    assert pipe.stopped is None and transport.requests == 50
    assert state.output_offset == (tmp_path / "out.jsonl").stat().st_size and state.stats.done == 50
    assert load_state(tmp_path / "out.jsonl.checkpoint").stats.done == 50  # type: ignore[union-attr]


async def test_a_stop_lets_the_requests_in_flight_finish_and_sends_nothing_new(tmp_path: Path) -> None:
    release = asyncio.Event()
    full = asyncio.Event()  # a request is at the server
    waiting = 0

    async def handler(request: Request) -> Reply:
        nonlocal waiting
        waiting += 1
        full.set()  # a request waits for its answer (slow start: one goes; the other workers wait on the limiter)
        await release.wait()
        return Reply.json(200, OK)

    pipe, state, results, transport = _pipeline(tmp_path, handler, 100)
    task = asyncio.ensure_future(pipe.run())
    await full.wait()
    pipe.stop(StopReason.INTERRUPTED)
    release.set()
    await task
    results.close()
    sent = transport.requests
    assert pipe.stopped is StopReason.INTERRUPTED and sent < 100
    assert len(read_results(tmp_path / "out.jsonl")) == state.stats.done == sent  # each answer written, once


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")
async def test_a_write_that_fails_stops_the_job_and_counts_nothing_unwritten(tmp_path: Path) -> None:
    pipe, state, results, _ = _pipeline(tmp_path, lambda r: Reply.json(200, OK), 20, output=Path("/dev/full"))
    await pipe.run()
    results.close()
    assert pipe.stopped is StopReason.WRITE_FAILED and "/dev/full" in (pipe.stop_message or "")
    assert state.stats.done == 0 and state.output_offset == 0  # the records go again next run


def test_one_table_maps_a_stop_for_both_middles() -> None:
    from batchrun.errors import BudgetReached, ServerError

    assert stop_reason(AuthError("no")) is StopReason.AUTH
    assert stop_reason(BudgetReached("cap")) is StopReason.BUDGET
    assert stop_reason(ServerError("502")) is StopReason.UNAVAILABLE  # the Batch API's calls past their retries


class _Middle:
    """A middle that signals itself twice and records what the lifecycle told it."""

    saves_on_error = False

    def __init__(self, state: JobState, files: JobFiles, display: Display) -> None:
        self.state, self.display = state, display
        self.clock = JobClock(state)
        self.results = ResultsFile(files.output, files.checkpoint, state, self.clock.state_bytes)
        self.stopped: StopReason | None = None
        self.told: list[tuple[StopReason, bool]] = []
        self.heard = asyncio.Event()
        self.shown: list[ProgressFigures] = []

    @property
    def complete(self) -> bool:
        return self.stopped is None

    async def run(self) -> None:
        async with running(self, self.display, self.state, False, tick=False):
            for _ in range(2):
                self.heard.clear()
                os.kill(os.getpid(), signal.SIGINT)
                await self.heard.wait()

    def signalled(self, reason: StopReason, again: bool) -> None:
        self.stopped = self.stopped or reason
        self.told.append((reason, again))
        self.heard.set()

    def figures(self) -> ProgressFigures:
        f = job_figures(self.state, self.clock, False, rps=0.0, retries=0, in_flight=0)
        self.shown.append(f)
        return f

    def ended(self) -> None: ...

    def sections(self, summ: dict[str, Any]) -> dict[str, Any]:
        return summ

    def before_summary(self, summ: dict[str, Any]) -> None: ...

    def after_summary(self, summ: dict[str, Any]) -> None: ...


async def test_the_lifecycle_takes_signals_and_saves_how_the_run_ended(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    cfg = RunConfig(input=inp, output=tmp_path / "out.jsonl", model="m", api_key=ApiKey(KEY))
    display = Display(DisplayMode.QUIET)
    made: list[_Middle] = []

    def make(state: JobState, files: JobFiles, part: object) -> _Middle:
        made.append(_Middle(state, files, display))
        return made[-1]

    outcome = await run_lifecycle(cfg, display, make)
    m = made[0]
    assert m.told == [(StopReason.INTERRUPTED, False), (StopReason.INTERRUPTED, True)]
    assert outcome.stopped is StopReason.INTERRUPTED and outcome.summary["job"]["complete"] is False
    saved = load_state(tmp_path / "out.jsonl.checkpoint")
    assert saved is not None and saved.last_run["status"] == "stopped: interrupted" and "ended" in saved.last_run
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers went with the run


def _answered(url: str, checkpoint: Path) -> int:
    """Lines the provider has answered in the job's batches, as GET /batches/{id} says."""
    n = 0
    for s in json.loads(checkpoint.read_bytes())["batch"]["shards"]:
        req = urllib.request.Request(f"{url}/batches/{s['batch_id']}", headers={"Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (the simulator on loopback)
            n += json.loads(r.read())["request_counts"]["completed"]
    return n


def test_a_no_wait_rerun_shows_done_as_its_summary_counts(tmp_path: Path, sim_factory: Any) -> None:
    """A rerun while the provider has answered lines it has not collected: progress said 150/600
    done while the summary said 0 succeeded; answered-but-uncollected is a figure of its own."""
    sim = sim_factory(batch_step_s=0.05, batch_lines_per_s=60.0)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(600))
    args = [str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--batch-api", "--no-wait",
            "--batch-size", "300", "--batch-queue-tokens", "10000000"]
    assert run(args).exit_code == 75
    checkpoint = tmp_path / "in.results.jsonl.checkpoint"
    for _ in range(2000):  # until the provider has answered some lines (bounded)
        if _answered(sim.url, checkpoint) > 0:
            break
        time.sleep(0.005)
    res = run(args)
    assert res.exit_code == 75, res.output
    done = [int(d) for d in re.findall(r"(\d+)/600 done", res.output)]
    counted = re.search(r"records: 600 total, (\d+) succeeded, (\d+) failed, (\d+) invalid", res.output)
    assert done and counted, res.output
    assert set(done) == {sum(int(g) for g in counted.groups())}, res.output
    assert "answered in batches, to collect" in res.output
