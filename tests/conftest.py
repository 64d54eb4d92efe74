"""Shared fixtures: a real simulator on 127.0.0.1 in its own thread, and input-file helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from batchrun.sim.server import SimConfig, Simulator

# The suite starts a few hundred `python -m batchrun` children; with PYTHONDONTWRITEBYTECODE set
# (as some shells do) each would compile ~120 modules from source again (0.12 s CPU apiece), as no
# installed copy does. __pycache__ is ignored by git.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(autouse=True, scope="session")
def _price_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Jobs keep snapshot prices in a cache folder of the test session's, not the user's home."""

    old = os.environ.get("BATCHRUN_CACHE_DIR")
    os.environ["BATCHRUN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("BATCHRUN_CACHE_DIR", None)
    else:
        os.environ["BATCHRUN_CACHE_DIR"] = old


class SimThread:
    """A Simulator serving from a background thread's event loop."""

    def __init__(self, config: SimConfig, port: int = 0) -> None:
        self.sim = Simulator(config)
        self.loop = asyncio.new_event_loop()
        self.url = ""
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.url = self.loop.run_until_complete(self.sim.start("127.0.0.1", port))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10), "simulator did not start"

    @property
    def stats(self) -> Any:
        return self.sim.stats

    def close(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def serving_app(app: web.Application, shutdown_timeout: float = 60.0) -> Iterator[int]:
    """An aiohttp app served on 127.0.0.1 from its own thread's loop; yields its port."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    port = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def serving(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Iterator[str]:
    """A one-route chat-completions server on 127.0.0.1 in its own thread; yields its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    with serving_app(app) as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """Start simulators with a given SimConfig; all are stopped after the test."""
    started: list[SimThread] = []

    def make(port: int = 0, **kw: Any) -> SimThread:
        s = SimThread(SimConfig(**kw), port)
        started.append(s)
        return s

    yield make
    for s in started:
        s.close()


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write rows (dicts, or raw str/bytes lines) as a JSONL file."""
    with open(path, "wb") as f:
        for r in rows:
            if isinstance(r, bytes):
                f.write(r + b"\n")
            elif isinstance(r, str):
                f.write(r.encode() + b"\n")
            else:
                f.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    """The output lines of a results file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plain_records(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    """n plain historical records with distinct texts."""
    return [{"id": f"{prefix}{i}", "text": f"ticket {prefix}{i}: the parcel is late again"} for i in range(n)]
