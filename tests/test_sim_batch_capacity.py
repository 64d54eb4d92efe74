"""The simulator's provider-wide Batch API capacity, and a cancel that keeps what was answered."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
from typer.testing import CliRunner

from batchrun.cli import app


def _file(n: int, tag: str) -> bytes:
    return b"".join(orjson.dumps({"custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions",
                                  "body": {"model": "gpt-4o-mini",
                                           "messages": [{"role": "user", "content": f"hi {i}"}]}}) + b"\n"
                    for i in range(n))


async def _create(s: aiohttp.ClientSession, url: str, n: int, tag: str) -> str:
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    form.add_field("file", _file(n, tag), filename=f"{tag}.jsonl")
    async with s.post(f"{url}/files", data=form) as r:
        fid = (await r.json())["id"]
    async with s.post(f"{url}/batches", json={"input_file_id": fid, "endpoint": "/v1/chat/completions",
                                              "completion_window": "24h"}) as r:
        return str((await r.json())["id"])


async def _get(s: aiohttp.ClientSession, url: str, bid: str) -> dict[str, Any]:
    async with s.get(f"{url}/batches/{bid}") as r:
        return dict(await r.json())


def test_batches_share_the_providers_capacity(sim_factory: Any) -> None:
    sim = sim_factory(batch_lines_per_s=40.0, batch_step_s=0.0)

    async def go() -> list[tuple[float, int, int]]:
        seen = []
        async with aiohttp.ClientSession() as s:
            ids = [await _create(s, sim.url, 40, t) for t in ("a", "b")]
            start = time.monotonic()
            while True:
                a, b = [await _get(s, sim.url, i) for i in ids]
                seen.append((time.monotonic() - start, a["request_counts"]["completed"],
                             b["request_counts"]["completed"]))
                if a["status"] == b["status"] == "completed":
                    return seen
                await asyncio.sleep(0.05)

    seen = asyncio.run(go())
    assert seen[-1][1:] == (40, 40)
    for elapsed, a, b in seen:  # 80 lines at 40 a second between them: never faster than the capacity
        assert a + b <= 40 * elapsed + 2
    halfway = next((a, b) for _, a, b in seen if a + b >= 40)
    assert min(halfway) >= 5  # both batches got a share, not one after the other


def test_a_cancel_keeps_the_lines_answered_before_it(sim_factory: Any) -> None:
    sim = sim_factory(batch_lines_per_s=50.0, batch_step_s=0.0)

    async def go() -> tuple[dict[str, Any], list[bytes]]:
        async with aiohttp.ClientSession() as s:
            bid = await _create(s, sim.url, 500, "c")
            while True:  # polling the API, as a client does
                if (await _get(s, sim.url, bid))["request_counts"]["completed"] >= 20:
                    break
                await asyncio.sleep(0.02)
            async with s.post(f"{sim.url}/batches/{bid}/cancel") as r:
                assert r.status == 200
            while True:
                if (b := await _get(s, sim.url, bid))["status"] in ("cancelled", "completed"):
                    break
                await asyncio.sleep(0.02)
            async with s.get(f"{sim.url}/files/{b['output_file_id']}/content") as r:
                return b, (await r.read()).splitlines()

    b, lines = asyncio.run(go())
    assert b["status"] == "cancelled"
    assert 20 <= len(lines) < 500 and b["request_counts"]["completed"] == len(lines)
    assert len({orjson.loads(x)["custom_id"] for x in lines}) == len(lines)
    assert sim.stats.batch_billed == len(lines)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_mock_server_refuses_a_capacity_that_is_none(value: str) -> None:
    res = CliRunner().invoke(app, ["mock-server", "--port", "0", "--batch-lines-per-s", value])
    assert res.exit_code == 2 and "--batch-lines-per-s" in res.output and "Traceback" not in res.output
