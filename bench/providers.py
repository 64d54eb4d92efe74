"""Routing costs nothing measurable: one provider against two providers with a route and a
canary, the same records and the same simulator, whole jobs timed from start to exit.

    python bench/providers.py [--records 5000] [--concurrency 32] [--rounds 3]

Both sides run `batchrun process` on the same input against one simulator process (so the
server's capacity is the same): side A with `--base-url` alone; side B with two providers in
batchrun.toml (both on that simulator), a [route] by a field, a [canary] on half the records
and a 10 % [shadow] left out (it adds requests, so it is not the same work). The rounds
alternate A and B; each side keeps its best. Prints B's throughput / A's (the floor is 0.95),
and the second run's routing at the server: how many requests each side sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import batchrun, fresh_dir, make_input, sim_reset, sim_stats, start_sim, stop  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    d = fresh_dir("providers")
    inp = make_input(d / "in.jsonl", a.records)
    sim, url = start_sim("--latency-ms", "5")
    cfg = d / "batchrun.toml"
    cfg.write_text(f"""
[providers.old]
base_url = "{url}"
api_key_env = "BATCHRUN_API_KEY"
[providers.new]
base_url = "{url}"
api_key_env = "BATCHRUN_API_KEY"
[route]
field = "task"
models = {{ chat = "new/gpt-4o-mini" }}
[canary]
model = "new/deepseek-chat"
share = 0.5
""")
    common = [str(inp), "--concurrency", str(a.concurrency), "--quiet", "--fresh"]
    one = ["--base-url", url, "--model", "gpt-4o-mini", *common]
    two = ["--config", str(cfg), "--model", "old/gpt-4o-mini", *common]
    best = {"one": float("inf"), "two": float("inf")}
    try:
        for _ in range(a.rounds):
            for side, args in (("one", one), ("two", two)):
                sim_reset(url)
                rc, wall, _ = batchrun(args)
                assert rc == 0, f"{side} exited {rc}"
                best[side] = min(best[side], wall)
        served = sim_stats(url)["ok"]
    finally:
        stop(sim)
    ratio = best["one"] / best["two"]
    print(f"{a.records} records, concurrency {a.concurrency}, 5 ms latency, best of {a.rounds} whole jobs each")
    print(f"one provider:  {best['one']:.2f} s ({a.records / best['one']:.0f} records/s)")
    print(f"two providers, route and 50 % canary: {best['two']:.2f} s ({a.records / best['two']:.0f} records/s); "
          f"answers at the server in the last run: {served}")
    print(f"throughput two providers / one provider = {ratio:.3f} (floor 0.95)")


if __name__ == "__main__":
    main()
