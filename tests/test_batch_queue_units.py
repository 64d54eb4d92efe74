"""batch/scheduling/queue.py and reserve.py, pure: the scheduler's decisions on a fake clock."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from batchrun.account.prices import Price, Rate
from batchrun.batch.plan import SUBMITTED, UPLOADED, ModelQueue, Shard
from batchrun.batch.scheduling.queue import WAIT_FIRST_S, Queues, queue_refusal, stated_limit
from batchrun.batch.scheduling.reserve import Reserve

OPENAI = ("Enqueued token limit reached for gpt-4o-mini in organization org-abc. Limit: 2,000,000 enqueued tokens. "
          "Please try again once some in_progress batches have been completed.")
AZURE = ("The number of enqueued tokens has surpassed the configured limit of 30K for the deployment "
         "'gpt-4.1-batch'. Please either increase the limit or try again once the current jobs have finished.")


def _shard(i: int, tokens: int, phase: str = UPLOADED, status: str | None = None, requests: int = 100) -> Shard:
    return Shard(f"s{i:04d}", "chat", "gpt-4o-mini", requests, 1000, phase=phase, status=status, tokens=tokens,
                 out_cap=requests * 10)


def test_the_limit_is_read_from_the_providers_words() -> None:
    assert stated_limit(OPENAI) == 2_000_000
    assert stated_limit(AZURE) == 30_000
    assert stated_limit("Enqueued token limit reached. Try later.") is None
    batch = {"status": "failed", "errors": {"data": [{"code": "token_limit_exceeded", "message": OPENAI}]}}
    assert queue_refusal(batch) == OPENAI
    assert queue_refusal({"status": "failed", "errors": {"data": [{"code": "invalid_json_line"}]}}) is None


def test_a_known_limit_admits_first_come_first_served_under_it() -> None:
    q = Queues({}, lambda _m: 250)
    running = _shard(1, 100, SUBMITTED, "in_progress")
    waiting = [_shard(2, 100), _shard(3, 200), _shard(4, 10)]
    assert q.admit([running, *waiting], 0.0) == [waiting[0]]  # s0003 does not fit; s0004 waits behind it
    running.status = "completed"
    assert q.admit([running, *waiting], 0.0) == [waiting[0]]  # 100 + 200 > 250: s0003 next time


def test_no_known_limit_starts_with_one_shard_then_twice_what_was_accepted() -> None:
    q = Queues({})
    shards = [_shard(i, 100) for i in range(1, 6)]
    assert q.admit(shards, 0.0) == shards[:1]
    shards[0].phase, shards[0].status = SUBMITTED, "in_progress"
    shards[1].tokens = 101  # shards differ a little: the window counts shards, sized by tokens
    q.accepted(shards[0], 100)
    assert q.admit(shards, 0.0) == shards[1:2]  # 100 held of twice the most accepted: one more
    shards[1].phase, shards[1].status = SUBMITTED, "in_progress"
    q.accepted(shards[1], 201)
    assert q.admit(shards, 0.0) == shards[2:4]


def test_a_refusal_teaches_the_limit_or_what_was_queued() -> None:
    q = Queues({})
    s = _shard(1, 100)
    q.refused(s, OPENAI, held=300, now=0.0)
    assert (q.of(s).limit, q.of(s).source, q.of(s).refusals) == (2_000_000, "message", 1)
    q2 = Queues({})
    q2.refused(s, "queue full", held=300, now=0.0)
    assert (q2.of(s).limit, q2.of(s).source) == (300, "queued")


def test_refused_alone_under_the_limit_waits_by_the_clock_once_the_ratio_is_known() -> None:
    q = Queues({"gpt-4o-mini": ModelQueue(est=1000, real=1000)})
    s = _shard(1, 100)
    q.refused(s, OPENAI, held=0, now=50.0)  # others hold the queue
    assert q.admit([s], 50.0 + WAIT_FIRST_S - 1) == []
    assert q.admit([s], 50.0 + WAIT_FIRST_S) == [s]
    assert q.next_wait([s], 60.0) == WAIT_FIRST_S - 10


def test_refused_alone_before_any_answer_is_split() -> None:
    q = Queues({})
    s = _shard(1, 1000)
    q.refused(s, OPENAI, held=0, now=0.0)
    assert q.pieces(s) == 2 and q.admit([s], 0.0) == [s]


def test_a_shard_over_the_whole_queue_is_cut_into_pieces_that_fit() -> None:
    q = Queues({"gpt-4o-mini": ModelQueue(limit=100, est=100, real=150)})  # the server counts 1.5 x
    assert q.pieces(_shard(1, 200)) == 4  # 300 server tokens, 90 a piece
    assert q.pieces(_shard(2, 60)) == 1
    assert q.pieces(_shard(3, 200, requests=1)) == 1  # one request cannot be cut


def test_the_budget_covers_a_shard_only_with_its_worst_case() -> None:
    p = Price(Rate(Decimal(1)), Rate(Decimal(2)), None, "test")  # USD per million tokens
    shard = _shard(1, 1_000_000, requests=100)  # 1M prompt tokens, 1,000 output tokens at most
    r = Reserve(1.002, lambda _s: p, lambda s: s.tokens)
    assert r.worst(shard) == 1.002
    assert r.covers(shard, 0.0, 0.0) and not r.covers(shard, 0.001, 0.0)
    assert Reserve(None, lambda _s: None, lambda s: s.tokens).covers(shard, 5.0, 5.0)


def test_a_limit_is_stated_per_provider_or_for_every_model(tmp_path: Path) -> None:
    from batchrun.config import resolve
    from batchrun.job.batch_api.batch_queue import stated_limits

    toml = tmp_path / "batchrun.toml"
    toml.write_text('batch_api = true\nbatch_queue_tokens = 2000000\n[providers.azure]\n'
                    'base_url = "https://example.openai.azure.com/openai/v1"\napi_key_env = "AZ_KEY"\n'
                    'batch_queue_tokens = 30000\n')
    cfg = resolve({"input": tmp_path / "in.jsonl"}, {"BATCHRUN_API_KEY": "k", "AZ_KEY": "a"}, toml)
    stated = stated_limits(cfg)
    assert (stated("gpt-4o-mini"), stated("azure/gpt-4.1-batch")) == (2_000_000, 30_000)


def test_the_simulators_queue_options_are_checked() -> None:
    from typer.testing import CliRunner

    from batchrun.cli import app

    res = CliRunner().invoke(app, ["mock-server", "--batch-queue-model", "gpt-4o-mini"])
    assert res.exit_code == 2 and "expected MODEL=N" in res.output
    res = CliRunner().invoke(app, ["mock-server", "--batches-per-hour", "0"])
    assert res.exit_code == 2 and "--batches-per-hour 0" in res.output
