"""Input mistakes caught before anything is sent, through the CLI: a template with braces, no
model anywhere, a file that is not a results file; and what is sent for `stream: true`,
`max_completion_tokens` and keys that look like generated ones, against real servers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from typer.testing import CliRunner

from batchrun.cli import app

from .conftest import plain_records, read_results, write_jsonl

ENV = {"BATCHRUN_API_KEY": "sk-input-test", "BATCHRUN_RETRY_BASE": "0.01", "OPENAI_API_KEY": None,
       "BATCHRUN_BASE_URL": None, "OPENAI_BASE_URL": None}

JSON_TEMPLATE = 'Reply as JSON like {"label": "billing"}. Ticket: {text}'


def cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env=ENV, catch_exceptions=False)


def one_sentence_exit_2(res: Any, *says: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    for s in says:
        assert s in res.output, res.output


class Recorder:
    """A chat-completions server on 127.0.0.1, in its own thread, that keeps every body it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "server did not start"

    async def _answer(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        application = web.Application()
        application.router.add_post("/v1/chat/completions", self._answer)
        self.runner = web.AppRunner(application)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/v1"
        ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def test_estimate_refuses_a_template_with_literal_braces_naming_the_field(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", ["{not json", *plain_records(3)])
    res = cli(["estimate", str(inp), "--model", "gpt-4o-mini", "--template", JSON_TEMPLATE])
    one_sentence_exit_2(res, "--template names the field '\"label\"'", "first plain record (line 2)",
                        "literal braces are written {{ and }}")
    res = cli(["estimate", str(inp), "--model", "gpt-4o-mini", "--template", JSON_TEMPLATE.replace(
        '{"label": "billing"}', '{{"label": "billing"}}'), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["lines"] == {"valid": 3, "invalid": 1}


@pytest.mark.parametrize(
    ("template", "says"),
    [("bad {x", "--template does not parse as a template"), ("{subject}: {text}", "the field 'subject'")],
)
def test_estimate_refuses_a_template_that_cannot_shape_the_records(tmp_path: Path, template: str, says: str) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    one_sentence_exit_2(cli(["estimate", str(inp), "--model", "m", "--template", template]), says,
                        "literal braces are written {{ and }}")


def test_estimate_with_no_model_anywhere_says_name_a_model(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [*plain_records(300), "{bad"])
    one_sentence_exit_2(cli(["estimate", str(inp)]), "name a model: records without one need --model")
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [{"id": "a", "text": "x", "engine": "gpt-4o-mini"},
                                                   {"id": "b", "text": "y"}])
    # some records name their model: bad lines, not a flag
    res = cli(["estimate", str(mixed), "--json", "--model-field", "engine"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["lines"] == {"valid": 1, "invalid": 1}


def test_report_refuses_a_file_that_is_not_a_results_file(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    one_sentence_exit_2(cli(["report", str(inp)]), "is not a batchrun results file: none of its 3 lines")
    empty = tmp_path / "empty.results.jsonl"
    empty.write_bytes(b"")
    one_sentence_exit_2(cli(["report", str(empty)]), "holds no result lines")
    one_sentence_exit_2(cli(["report", str(tmp_path)]), "cannot read results file")
    one_sentence_exit_2(cli(["report", str(tmp_path / "missing.jsonl")]), "cannot read results file")


def test_stream_true_is_sent_as_stream_false(tmp_path: Path, recorder: Recorder) -> None:
    msg = [{"role": "user", "content": "hi"}]
    inp = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "s1", "stream": True, "stream_options": {"include_usage": True}, "messages": msg},
        {"custom_id": "s2", "method": "POST", "url": "/v1/chat/completions", "body": {"stream": True, "messages": msg}},
        {"id": "plain", "messages": msg},
    ])
    res = cli(["process", str(inp), "--base-url", recorder.url, "--model", "m", "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(recorder.bodies) == 3  # each sent once, and each answer read
    assert all(b.get("stream", False) is False and "stream_options" not in b for b in recorder.bodies)
    assert sum("stream" in b for b in recorder.bodies) == 2
    assert all(o["error"] is None for o in read_results(tmp_path / "in.results.jsonl"))


def test_max_tokens_flag_keeps_a_body_s_own_max_completion_tokens(tmp_path: Path, recorder: Recorder) -> None:
    msg = [{"role": "user", "content": "hi"}]
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "own", "max_completion_tokens": 40, "messages": msg},
                                              {"id": "flag", "messages": msg}])
    res = cli(["process", str(inp), "--base-url", recorder.url, "--model", "m", "--max-tokens", "7", "--quiet"])
    assert res.exit_code == 0, res.output
    caps = {(b.get("max_completion_tokens"), b.get("max_tokens")) for b in recorder.bodies}
    assert len(recorder.bodies) == 2 and caps == {(40, None), (None, 7)}


def test_output_keys_are_unique_and_an_empty_key_is_a_bad_line(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": "one"},
        {"text": "no key: line-2"},
        "{broken json on line 3",
        {"id": "line-3", "text": "claims line 3's key"},
        {"custom_id": "", "text": "empty key"},
        {"id": "line-6", "text": "its own line number: fine"},
        {"id": "line-2", "text": "claims line 2's key"},
    ])
    res = cli(["process", str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"])
    assert res.exit_code == 1, res.output
    out = {o["custom_id"]: o for o in read_results(tmp_path / "in.results.jsonl")}
    assert len(out) == 7  # one line per input line, no key twice
    assert {k for k, o in out.items() if o["error"] is None} == {"a", "line-2", "line-6"}
    assert "line 3: invalid JSON" in out["line-3"]["error"]["message"]
    assert out["line-4"]["error"]["message"] == (
        "line 4: id 'line-3' is kept for line 3 (a key line-N belongs to line N)")
    assert out["line-5"]["error"]["message"] == "line 5: empty custom_id"
    assert "kept for line 2" in out["line-7"]["error"]["message"]
    assert sim.stats.requests == 3
