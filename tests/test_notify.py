"""--notify: a real HTTP receiver on 127.0.0.1 records every POST and when it came; jobs run
in-process against real simulators. Receivers that are down (a closed port) or hang (never
answer) must not stop the job."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from batchrun.send.notify import Notifier, notify

from .conftest import plain_records, read_results, serving_app, write_jsonl
from .test_migration import toml
from .test_process import KEY, run

OLD, NEW = "old-secret-key-1234", "new-secret-key-5678"


class Receiver:
    """An incoming-webhook stand-in: records (arrival epoch seconds, JSON body, headers)."""

    def __init__(self, hang: bool = False) -> None:
        self.got: list[tuple[float, dict[str, Any], dict[str, str]]] = []
        self.hang = hang
        self.arrived = threading.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.got.append((time.time(), body, dict(request.headers)))
        self.arrived.set()
        if self.hang:
            await asyncio.Event().wait()  # never answers
        return web.Response(text="ok")

    def events(self) -> list[str]:
        return [b["event"] for _, b, _ in self.got]


@contextlib.contextmanager
def receiving(hang: bool = False) -> Iterator[tuple[Receiver, str]]:
    rec = Receiver(hang)
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    with serving_app(app, shutdown_timeout=0.1) as port:  # a hanging receiver is not waited for
        yield rec, f"http://127.0.0.1:{port}/hook"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def canary_config(tmp: Path, old: str, new: str) -> Path:
    return toml(tmp, old, new, '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\nwindow = 20')


def test_a_rollback_is_posted_within_5s_of_it_and_the_end_after(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=OLD, latency_ms=5)
    new = sim_factory(api_key=NEW, latency_ms=5, error_rate=0.5, error_kinds=("500",), seed=3)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(200))
    summary = tmp_path / "s.json"
    with receiving() as (rec, url):
        res = run([str(inp), "--config", str(canary_config(tmp_path, old.url, new.url)), "--model",
                   "old/gpt-4o-mini", "--notify", url, "--quiet", "--summary-json", str(summary)],
                  env={"OLD_KEY": OLD, "NEW_KEY": NEW})
    assert res.exit_code == 0, res.output
    canary = json.loads(summary.read_text())["canary"]
    assert canary["state"] == "rolled_back"
    assert rec.events()[0] == "canary_rolled_back" and rec.events()[-1] == "job_complete"
    at, body, headers = rec.got[0]
    assert body["model"] == "new/deepseek-chat" and body["reason"] == canary["reason"]
    assert "new/deepseek-chat" in body["text"] and canary["reason"] in body["text"]
    assert body["judged"] > 0 and "records" in body["canary"] and "records" in body["baseline"]
    assert at - canary["changed_at"] < 5.0  # the receiver's clock against the rollback's
    assert headers["Content-Type"] == "application/json"
    end = rec.got[-1][1]
    assert end["records"] == 200 and end["failed"] == 0 and end["exit_code"] == 0 and end["duration_s"] >= 0
    assert "200 records" in end["text"]
    for _, b, _ in rec.got:
        assert OLD not in json.dumps(b) and NEW not in json.dumps(b)


def test_a_receiver_that_is_down_is_said_once_and_the_job_completes(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(20))
    url = f"http://hook:hunter2pw@127.0.0.1:{closed_port()}/hook"
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--max-cost", "100",
               "--prices", str(prices(tmp_path))], env={"BATCHRUN_NOTIFY_URL": url})
    assert res.exit_code == 0, res.output
    assert len(read_results(tmp_path / "in.results.jsonl")) == 20
    assert res.output.count("could not notify") == 1
    assert "hook:***@127.0.0.1" in res.output and "hunter2pw" not in res.output


def test_a_receiver_that_hangs_does_not_hold_the_job(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(20))
    with receiving(hang=True) as (rec, url):
        res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--notify", url])
        assert rec.arrived.is_set()  # the end was posted; its answer never came
    assert res.exit_code == 0, res.output
    assert len(read_results(tmp_path / "in.results.jsonl")) == 20
    assert "1 notification(s) to http://127.0.0.1" in res.output and "not sent before the job ended" in res.output


def prices(tmp: Path) -> Path:
    p = tmp / "p.toml"
    p.write_text('[models."gpt-4o-mini"]\ninput = 1000\noutput = 1000\n')  # $0.001 a token
    return p


def test_budget_shares_and_the_budget_stop_are_posted_without_the_key(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(100))
    cfg = tmp_path / "batchrun.toml"
    with receiving() as (rec, url):
        cfg.write_text(f'[notify]\nurl = "{url}"\nbudget_alerts = [0.25, 0.5]\n'
                       'on = ["budget", "job_stopped", "job_complete"]\n')
        res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--prices", str(prices(tmp_path)),
                   "--max-cost", "2", "--max-tokens", "20", "--config", str(cfg), "--quiet", "--concurrency", "2"])
    assert res.exit_code == 3, res.output
    assert rec.events() == ["budget", "budget", "job_stopped"]
    shares = [b["share"] for _, b, _ in rec.got[:2]]
    assert shares == [0.25, 0.5] and all(b["spent_usd"] >= b["share"] * 2 for _, b, _ in rec.got[:2])
    stop = rec.got[-1][1]
    assert stop["exit_code"] == 3 and "budget" in stop["reason"] and "--max-cost" in stop["resume"]
    assert stop["resume"].startswith("to go on, run: batchrun ") and "--max-cost 4" in stop["resume"]
    assert all(KEY not in json.dumps(b) for _, b, _ in rec.got)


def test_a_healthy_canary_posts_its_ramp_step_and_promotion(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=OLD)
    new = sim_factory(api_key=NEW)
    cfg = canary_config(tmp_path, old.url, new.url)
    cfg.write_text(cfg.read_text().replace("share = 0.5\nwindow = 20", "ramp = [0.2, 0.5, 1.0]\nwindow = 5"))
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(150))
    with receiving() as (rec, url):
        res = run([str(inp), "--config", str(cfg), "--model", "old/gpt-4o-mini", "--notify", url, "--quiet",
                   "--concurrency", "2"], env={"OLD_KEY": OLD, "NEW_KEY": NEW})
    assert res.exit_code == 0, res.output
    assert rec.events() == ["ramp_step", "canary_promoted", "job_complete"]
    assert rec.got[0][1]["share"] == 0.5 and "50%" in rec.got[0][1]["text"]
    assert rec.got[1][1]["share"] == 1.0 and "promoted" in rec.got[1][1]["text"]


def test_a_bad_notify_url_is_a_usage_error(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    res = run([str(inp), "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--notify", "ftp://x"])
    assert res.exit_code == 2 and "notify URL" in res.output


def test_events_not_chosen_are_not_posted(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    cfg = tmp_path / "batchrun.toml"
    with receiving() as (rec, url):
        cfg.write_text(f'[notify]\nurl = "{url}"\non = ["job_stopped"]\n')
        res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--config", str(cfg)])
    assert res.exit_code == 0 and rec.got == []


def test_a_bad_notify_table_is_a_usage_error(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text('[notify]\nurl = "http://127.0.0.1:9/x"\non = ["rollback"]\n')
    res = run([str(inp), "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--config", str(cfg)])
    assert res.exit_code == 2 and "[notify]: on must be a list of events" in res.output


def test_another_step_posts_through_the_running_jobs_notifier() -> None:
    async def go(url: str) -> None:
        n = Notifier(url, ("batch_queue_refused",), lambda m: None)
        notify("batch_queue_refused", "outside any job: dropped")
        async with n.running(flush_s=5):
            notify("batch_queue_refused", "2 shards wait for the queue", shards=2)
            notify("job_complete", "not chosen")

    with receiving() as (rec, url):
        asyncio.run(go(url))
    assert [(b["event"], b["shards"]) for _, b, _ in rec.got] == [("batch_queue_refused", 2)]
