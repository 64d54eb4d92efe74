"""A provider's `headers` and `extra_body` tables reach every request to it, and only to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from .conftest import plain_records, serving, write_jsonl
from .test_process import run

OK = {"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


def test_headers_and_extra_body_reach_the_provider(tmp_path: Path) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.json()))
        return web.json_response(OK)

    with serving(handler) as url:
        cfg = tmp_path / "batchrun.toml"
        cfg.write_text(f'[providers.gw]\nbase_url = "{url}"\nheaders = {{ "x-litellm-model" = "new-model" }}\n'
                       'extra_body = { num_retries = 0, metadata = { team = "search" } }\n')
        inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
        res = run([str(inp), "--config", str(cfg), "--model", "gw/m", "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(seen) == 3
    for headers, body in seen:
        assert headers["x-litellm-model"] == "new-model"
        assert body["num_retries"] == 0 and body["metadata"] == {"team": "search"} and body["model"] == "m"


def test_a_header_batchrun_sets_itself_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text('[providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\nheaders = { Authorization = "Bearer sk-x" }\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    res = run([str(inp), "--config", str(cfg), "--model", "gw/m", "--quiet"])
    assert res.exit_code == 2 and "api_key_env" in res.output and "sk-x" not in res.output


def test_a_header_name_http_does_not_allow_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text('[providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\nheaders = { "x title" = "a" }\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    res = run([str(inp), "--config", str(cfg), "--model", "gw/m", "--quiet"])
    assert res.exit_code == 2 and "header name 'x title'" in res.output, res.output
    assert not (tmp_path / "in.results.jsonl").exists()
