"""Adaptive rate limiting against the simulator's limits, with no limit flags given to batchrun.

    python bench/ratelimit.py [--only requests-headers,...]

Four scenarios: a requests-per-minute limit (1200) with OpenAI's headers and without any
(a silent gateway), and a tokens-per-minute limit with long prompts, with and without headers.
The simulator's buckets start full (a whole minute's allowance, as OpenAI's `remaining` does),
so the "steady part" is measured after that first minute's allowance is used: answers after it,
over the time they took. Prints achieved / limit and the share of requests answered 429.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import batchrun, fresh_dir, make_input, sim_reset, sim_stats, start_sim, stop  # noqa: E402

LONG = ("Summarise the following customer conversation in two sentences and list the products it "
        "mentions, the order numbers, and whether the customer asked for a refund or a replacement. ")


def long_prompts(path: Path, n: int) -> Path:
    """Chat bodies of about a thousand tokens each, capped at 64 output tokens."""
    with open(path, "w") as f:
        for i in range(n):
            text = f"#{i} " + LONG * 30
            f.write(json.dumps({"custom_id": f"c{i}", "max_tokens": 64,
                                "messages": [{"role": "user", "content": text}]}) + "\n")
    return path


def steady(url: str, limit: int, tokens: bool) -> tuple[float, float, int, int]:
    """Achieved per-minute rate after the first minute's allowance, the 429 share, oks, requests."""
    st = sim_stats(url)
    times, charged = st["ok_times"], st["ok_charged"]
    used = 0
    start = 0
    for i, c in enumerate(charged):  # skip what the full bucket let through at once
        used += c if tokens else 1
        if used >= limit:
            start = i + 1
            break
    span = times[-1] - times[start]
    amount = sum(charged[start + 1:]) if tokens else len(times) - start - 1
    rate = amount / span * 60 if span > 0 else 0.0
    return rate, st["statuses"].get("429", 0) / max(1, st["requests"]), st["ok"], st["requests"]


SCENARIOS = {
    # name: (simulator args, limit, tokens?, records, floor on achieved/limit, cap on 429 share)
    "requests-headers": (["--rpm", "1200"], 1200, False, 1800, 0.95, 0.01),
    "requests-silent": (["--rpm", "1200", "--no-headers"], 1200, False, 1800, 0.85, 0.05),
    "tokens-headers": (["--tpm", "1200000"], 1_200_000, True, 1600, 0.95, 0.01),
    "tokens-silent": (["--tpm", "1200000", "--no-headers"], 1_200_000, True, 1600, 0.85, 0.05),
}
# Calendar-minute counters (some gateways): 400 records at 300 rpm must span two minutes, so the
# figure is the 429 share alone; the steady rate means nothing there.
MINUTE_SCENARIOS = {
    "minute-headers": ["--rpm", "300", "--window", "minute"],
    "minute-silent": ["--rpm", "300", "--window", "minute", "--no-headers"],
}


def minute(work: Path, name: str, sim_args: list[str]) -> None:
    """A calendar-minute counter: report completion, time and the 429 share."""
    inp = make_input(work / f"{name}.jsonl", 400)
    sim, url = start_sim(*sim_args)
    try:
        sim_reset(url)
        code, wall, _ = batchrun([str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--quiet",
                                  "--concurrency", "20"])
        st = sim_stats(url)
    finally:
        stop(sim)
    share = st["statuses"].get("429", 0) / max(1, st["requests"])
    print(f"{name}: exit {code}, {st['ok']} records in {wall:.0f}s (two calendar minutes needed), "
          f"{st['requests']} requests, 429s {share:.2%}")
    print(f"RATIO {name} 429 share = {share:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join([*SCENARIOS, *MINUTE_SCENARIOS]))
    a = ap.parse_args()
    work = fresh_dir("ratelimit")
    for name in a.only.split(","):
        if name in MINUTE_SCENARIOS:
            minute(work, name, MINUTE_SCENARIOS[name])
            continue
        sim_args, limit, tokens, n, floor, cap = SCENARIOS[name]
        inp = long_prompts(work / f"{name}.jsonl", n) if tokens else make_input(work / f"{name}.jsonl", n)
        sim, url = start_sim(*sim_args)
        try:
            sim_reset(url)
            code, wall, _ = batchrun([str(inp), "--base-url", url, "--model", "gpt-4o-mini", "--quiet",
                                      "--concurrency", "50", "--summary-json", str(work / f"{name}.json")])
            rate, share, ok, requests = steady(url, limit, tokens)
        finally:
            stop(sim)
        summ = json.loads((work / f"{name}.json").read_text())
        unit = "tpm" if tokens else "rpm"
        print(f"{name}: exit {code}, {ok} records in {wall:.0f}s, {requests} requests, steady {rate:.0f} {unit} "
              f"of {limit}, 429s {share:.2%}, waited {summ['job']['rate_limit_wait_s']:.0f}s on limits")
        print(f"RATIO {name} achieved/limit = {rate / limit:.3f} (floor {floor}); "
              f"429 share = {share:.4f} (cap {cap})")


if __name__ == "__main__":
    main()
