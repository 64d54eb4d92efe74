"""The Batch API parts one at a time, against the simulator on 127.0.0.1: the files and batches
routes, finding a batch created but never recorded, the plan in the checkpoint, backoff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from batchrun.batch.api import BatchApi
from batchrun.batch.plan import CREATING, SUBMITTED, UPLOADED, Plan, Shard, ShardFiles
from batchrun.batch.poll import PollBackoff
from batchrun.batch.submit import Submitter
from batchrun.errors import AuthError
from batchrun.secret import ApiKey
from batchrun.store.state import JobState

KEY = "sk-batch-test-key"


def _request_file(path: Path, n: int, model: str = "gpt-4o-mini") -> Path:
    with open(path, "wb") as f:
        for i in range(n):
            f.write(orjson.dumps({"custom_id": f"k{i}", "method": "POST", "url": "/v1/chat/completions",
                                  "body": {"model": model, "messages": [{"role": "user", "content": f"q{i}"}]}})
                    + b"\n")
    return path


async def test_upload_create_list_cancel_and_key_check(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(api_key=KEY, batch_step_s=5.0)
    src = _request_file(tmp_path / "req.jsonl", 5)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AuthError):
            await BatchApi(session, sim.url, ApiKey("wrong"), 10).upload(src, "req.jsonl")
        api = BatchApi(session, sim.url, ApiKey(KEY), 10)
        f = await api.upload(src, "req.jsonl")
        assert f["bytes"] == src.stat().st_size and f["purpose"] == "batch"
        made = [await api.create(f["id"], "/v1/chat/completions", {"batchrun_shard": f"s{i}"}) for i in range(3)]
        assert all(b["status"] == "validating" for b in made)
        listed = [b["id"] async for b in api.batches()]
        assert listed == [b["id"] for b in reversed(made)]  # newest first
        cancelled = await api.cancel(made[0]["id"])
        assert cancelled["status"] == "cancelling"
    assert sim.stats.files_uploaded == 1 and sim.stats.batches_created == 3


async def test_list_pages_through_more_than_one_page(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=30.0)
    src = _request_file(tmp_path / "req.jsonl", 1)
    async with aiohttp.ClientSession() as session:
        api = BatchApi(session, sim.url, ApiKey(None), 10)
        f = await api.upload(src, "req.jsonl")
        for i in range(105):
            await api.create(f["id"], "/v1/chat/completions", {"n": str(i)})
        seen = [b["metadata"]["n"] async for b in api.batches()]
    assert seen == [str(i) for i in reversed(range(105))]


async def test_a_batch_created_but_not_recorded_is_found_not_made_again(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=30.0)
    plan = Plan.new()
    _request_file(ShardFiles.of(tmp_path, "s0001").requests, 4)
    saves: list[str] = []
    async with aiohttp.ClientSession() as session:
        api = BatchApi(session, sim.url, ApiKey(None), 10)
        sub = Submitter({None: api}, plan, tmp_path, lambda: saves.append(plan.shards[0].phase))
        shard = Shard("s0001", "chat", "gpt-4o-mini", 4, 100)
        plan.shards.append(shard)
        # the run before the crash: uploaded, saved `creating`, asked for the batch, killed
        # before the answer was recorded
        f = await api.upload(ShardFiles.of(tmp_path, "s0001").requests, "s0001.jsonl")
        shard.file_id, shard.phase, shard.creating_at = f["id"], CREATING, 0.0
        lost = await api.create(f["id"], "/v1/chat/completions", sub.metadata(shard))
        other = Shard("s0002", "chat", "gpt-4o-mini", 4, 100)  # another shard's batch does not match
        await api.create(f["id"], "/v1/chat/completions", sub.metadata(other))
        await sub.submit(shard)
    assert shard.batch_id == lost["id"] and shard.phase == SUBMITTED
    assert sim.stats.batches_created == 2
    assert saves == [SUBMITTED]


async def test_each_step_is_saved_before_the_next(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory(batch_step_s=30.0)
    plan = Plan.new()
    _request_file(ShardFiles.of(tmp_path, "s0001").requests, 2)
    shard = Shard("s0001", "chat", "gpt-4o-mini", 2, 100)
    plan.shards.append(shard)
    saves: list[tuple[str, str | None, str | None]] = []
    async with aiohttp.ClientSession() as session:
        sub = Submitter({None: BatchApi(session, sim.url, ApiKey(None), 10)}, plan, tmp_path,
                        lambda: saves.append((shard.phase, shard.file_id, shard.batch_id)))
        await sub.submit(shard)
    assert [s[0] for s in saves] == [UPLOADED, CREATING, SUBMITTED]
    assert saves[0][1] is not None and saves[2][2] is not None


def test_plan_round_trips_through_the_checkpoint_and_old_checkpoints_load() -> None:
    plan = Plan.new()
    plan.shards.append(Shard("s0001", "chat", "m", 3, 10, phase=SUBMITTED, batch_id="b1", counts={"total": 3}))
    state = JobState(input_fingerprint={"size": 1}, identity={}, batch=plan.to_state())
    back = Plan.from_state(JobState.from_bytes(state.to_bytes()).batch)
    assert back == plan
    old = json.loads(state.to_bytes())
    del old["batch"]  # a checkpoint from before --batch-api
    assert JobState.from_bytes(json.dumps(old).encode()).batch == {}
    assert Plan.from_state({}) is None


def test_poll_backoff_grows_to_its_cap_and_restarts_after_a_change() -> None:
    b = PollBackoff(first_s=1.0, factor=2.0, cap_s=5.0)
    assert [b.next_s(False) for _ in range(4)] == [2.0, 4.0, 5.0, 5.0]
    assert b.next_s(True) == 1.0


async def test_a_key_the_server_echoes_never_reaches_the_message(tmp_path: Path) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from batchrun.errors import BadRequest

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": f"bad: {request.headers['Authorization']}",
                                            "code": "invalid_request"}}, status=400)

    app = web.Application()
    app.router.add_post("/v1/files", echo)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        api = BatchApi(session, str(server.make_url("/v1")), ApiKey(KEY), 10)
        with pytest.raises(BadRequest) as e:
            await api.upload(_request_file(tmp_path / "r.jsonl", 1), "r.jsonl")
    assert KEY not in e.value.message and "<redacted>" in e.value.message


def test_shards_split_by_count_bytes_endpoint_and_model(tmp_path: Path) -> None:
    from batchrun.batch.shard import ShardWriter, index_lines

    ids = iter(f"s{i:04d}" for i in range(1, 100))
    w = ShardWriter(tmp_path, lambda: next(ids), batch_size=3, max_bytes=250)
    line = b'{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"a"}}\n'  # 84 bytes
    for n in range(7):
        w.add("chat", "a", line, n + 1, f"k{n}")
    w.add("chat", "b", line, 8, "k7")
    shards = w.finish()
    assert [(s.model, s.requests) for s in shards] == [("a", 2), ("a", 2), ("a", 2), ("a", 1), ("b", 1)]
    assert all(s.bytes <= 250 for s in shards)
    assert list(index_lines(ShardFiles.of(tmp_path, "s0002").index)) == [(3, "k2"), (4, "k3")]
    assert not w.fits(b"x" * 251)


def test_provider_lines_become_results_at_the_batch_price() -> None:
    from decimal import Decimal

    from batchrun.account.prices import Price, Rate
    from batchrun.batch.collect import result_of

    shard = Shard("s0001", "chat", "m", 3, 0)
    price = Price(Rate(Decimal("1")), Rate(Decimal("2")), None, "test")
    ok = {"custom_id": "a", "error": None, "response": {"status_code": 200, "request_id": "req1", "body": {
        "choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}}}
    r = result_of(ok, 7, shard, price, 1000.0)
    assert (r.ok, r.line, r.usage.input_tokens, r.usage.output_tokens) == (True, 7, 10, 5)
    assert r.cost_usd == (10 * 1 + 5 * 2) / 1e6 and r.started_at == 1000.0
    refused = {"custom_id": "b", "error": None, "response": {"status_code": 400, "request_id": "req2", "body": {
        "error": {"code": "context_length_exceeded", "message": "too long"}}}}
    r = result_of(refused, 8, shard, price, None)
    assert (r.ok, r.error_code, r.status_code, r.cost_usd) == (False, "context_length_exceeded", 400, None)
    no_usage = {"custom_id": "c", "response": {"status_code": 200, "body": {"choices": []}}}
    assert result_of(no_usage, 9, shard, price, None).unmetered
    unknown_price = result_of(ok, 7, shard, None, None)
    assert unknown_price.cost_usd is None and unknown_price.usage.input_tokens == 10  # never a guess
