"""The simulator's embeddings, completions and Responses endpoints over real HTTP on 127.0.0.1:
their answer bodies and usage, a 400 for a body the API refuses (never billed), and the same
limits and TPM charges as chat."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from batchrun.sim.answers import sim_tokens
from batchrun.sim.server import SimConfig, Simulator


@pytest.fixture
async def sim_url() -> AsyncIterator[tuple[Simulator, str]]:
    sims: list[Simulator] = []

    async def make(**kw: Any) -> tuple[Simulator, str]:
        sim = Simulator(SimConfig(**kw))
        sims.append(sim)
        return sim, await sim.start()

    yield make
    for sim in sims:
        await sim.stop()


async def post(url: str, path: str, body: dict[str, Any]) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.post(url + path, json=body) as r:
        return r.status, r.headers, orjson.loads(await r.read())


async def test_each_endpoint_answers_in_its_own_shape(sim_url: Any) -> None:
    sim, url = await sim_url()
    status, _, emb = await post(url, "/embeddings", {"model": "e", "input": ["one two", "three"], "dimensions": 5})
    assert status == 200 and emb["object"] == "list" and [d["index"] for d in emb["data"]] == [0, 1]
    for d in emb["data"]:
        assert len(d["embedding"]) == 5 and math.isclose(math.hypot(*d["embedding"]), 1.0, rel_tol=1e-9)
    assert emb["usage"] == {"prompt_tokens": sim_tokens("one two") + sim_tokens("three"), "total_tokens": 3}
    _, _, packed = await post(url, "/embeddings", {"model": "e", "input": "x", "encoding_format": "base64"})
    assert len(struct.unpack("<64f", base64.b64decode(packed["data"][0]["embedding"]))) == 64

    status, _, cmp = await post(url, "/completions", {"model": "c", "prompt": "Say hi", "max_tokens": 3})
    assert status == 200 and cmp["object"] == "text_completion" and cmp["choices"][0]["text"].strip()
    assert cmp["usage"]["prompt_tokens"] == 2 and cmp["usage"]["completion_tokens"] <= 3

    status, _, rsp = await post(url, "/responses", {"model": "r", "input": "hello there", "instructions": "Be brief"})
    assert status == 200 and rsp["object"] == "response" and rsp["status"] == "completed"
    assert rsp["output"][0]["content"][0]["type"] == "output_text"
    u = rsp["usage"]
    assert u["input_tokens"] == 3 + (4 + 2) + (4 + 2) and u["input_tokens_details"]["cached_tokens"] == 0
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]

    billed = sim.stats.by_endpoint
    assert {k: v["billed"] for k, v in billed.items()} == {"embeddings": 2, "completions": 1, "responses": 1}
    assert billed["embeddings"]["completion_tokens"] == 0
    assert billed["responses"]["completion_tokens"] == u["output_tokens"]


@pytest.mark.parametrize(("path", "body"), [
    ("/embeddings", {"model": "e"}),
    ("/embeddings", {"model": "e", "input": ""}),
    ("/embeddings", {"model": "e", "input": [{"text": "x"}]}),
    ("/completions", {"model": "c", "messages": [{"role": "user", "content": "x"}]}),
    ("/responses", {"model": "r", "input": []}),
])
async def test_a_body_the_api_refuses_is_a_400_never_billed(sim_url: Any, path: str, body: dict[str, Any]) -> None:
    sim, url = await sim_url()
    status, _, err = await post(url, path, body)
    assert status == 400 and err["error"]["type"] == "invalid_request_error"
    assert sim.stats.billed == 0 and sim.stats.by_endpoint == {}


async def test_limits_and_tpm_charges_apply_to_every_endpoint(sim_url: Any) -> None:
    sim, url = await sim_url(rpm=1)
    assert (await post(url, "/embeddings", {"model": "m", "input": "a"}))[0] == 200
    status, headers, _ = await post(url, "/responses", {"model": "m", "input": "a"})  # same model, same limit
    assert status == 429 and "retry-after" in headers
    sim, url = await sim_url()
    await post(url, "/responses", {"model": "m", "input": "hello", "max_output_tokens": 50})
    await post(url, "/embeddings", {"model": "m", "input": "hello"})
    # Responses: prompt plus its output cap, as chat with max_tokens; embeddings: the input alone
    assert sim.stats.ok_charged == [3 + 4 + 1 + 50, 1]
