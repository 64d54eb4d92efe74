"""--notify costs the job nothing, even when the receiver is down or hangs.

    python bench/notify.py [--records 1000] [--rounds 2]

One job: a canary whose server fails half its requests is rolled back early (a notification
mid-job), then the rest of the records at 200 ms latency, concurrency 10, then the job-complete
notification. Run with no --notify, with --notify to a closed port (down) and to a receiver that
accepts and never answers (hangs), in turn, `rounds` times; prints each one's best wall time and
its ratio to no --notify (floor: under 1.02, i.e. less than 2 % slower).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import batchrun, fresh_dir, make_input, start_sim, stop  # noqa: E402


def hanging_receiver() -> str:
    """A loopback webhook that reads each POST and never answers; runs until the bench exits."""
    loop = asyncio.new_event_loop()

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.Event().wait()
        raise AssertionError

    async def start() -> int:
        app = web.Application()
        app.router.add_post("/hook", hang)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    port = loop.run_until_complete(start())
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/hook"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    d = fresh_dir("notify")
    inp = make_input(d / "in.jsonl", a.records)
    old, old_url = start_sim("--latency-ms", "200")
    new, new_url = start_sim("--latency-ms", "200", "--error-rate", "0.5", "--error-kinds", "500")
    cfg = d / "batchrun.toml"
    cfg.write_text(f'[providers.old]\nbase_url = "{old_url}"\napi_key_env = "BATCHRUN_API_KEY"\n'
                   f'[providers.new]\nbase_url = "{new_url}"\napi_key_env = "BATCHRUN_API_KEY"\n'
                   '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\nwindow = 20\n')
    receivers = {"none": None, "down": closed_port_url(), "hangs": hanging_receiver()}
    best: dict[str, float] = {}
    try:
        for _ in range(a.rounds):
            for name, url in receivers.items():
                rc, wall, _ = batchrun([str(inp), "--config", str(cfg), "--model", "old/gpt-4o-mini", "--quiet",
                                        "--fresh", "--concurrency", "10", *(["--notify", url] if url else [])])
                assert rc == 0, f"{name}: exit {rc}"
                best[name] = min(wall, best.get(name, wall))
    finally:
        stop(old)
        stop(new)
    for name, wall in best.items():
        print(f"{name}: {wall:.2f} s, ratio to no --notify {wall / best['none']:.3f}")


if __name__ == "__main__":
    main()
