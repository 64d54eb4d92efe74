"""Every endpoint at volume: tokens in the results against what the server billed, and each
endpoint's rate against chat's, in one run.

    python bench/endpoints.py [--records 5000] [--concurrency 50] [--rounds 2]

Phase 1: one mixed file of `--records` Batch API lines per endpoint (chat, embeddings,
completions, Responses, interleaved) through one job; per endpoint, the input and output tokens
summed over the result lines ÷ the tokens the simulator billed (floor: exactly 1).
Phase 2: the same plain records sent with `--endpoint NAME`, one job per endpoint at zero
latency, best of `--rounds` alternating rounds; each endpoint's requests per second at the
server ÷ chat's (what the endpoint's own body shaping, answer reading and larger answers cost;
embeddings answers carry vectors).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import batchrun, fresh_dir, make_input, rate_at_server, sim_reset, sim_stats, start_sim, stop  # noqa: E402

MODELS = {"chat": "gpt-4o-mini", "embeddings": "text-embedding-3-small", "completions": "gpt-3.5-turbo-instruct",
          "responses": "gpt-4.1-mini"}
URLS = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings", "completions": "/v1/completions",
        "responses": "/v1/responses"}


def body(endpoint: str, text: str) -> dict:
    model = MODELS[endpoint]
    if endpoint == "chat":
        return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 40}
    if endpoint == "embeddings":
        return {"model": model, "input": text}
    if endpoint == "completions":
        return {"model": model, "prompt": text, "max_tokens": 40}
    return {"model": model, "input": text, "instructions": "One word.", "max_output_tokens": 40}


def mixed_input(path: Path, per_endpoint: int) -> Path:
    with open(path, "w") as f:
        for i in range(per_endpoint):
            for name in URLS:
                text = f"#{i} the parcel arrived late and the box was damaged ({name})"
                f.write(json.dumps({"custom_id": f"{name}-{i}", "method": "POST", "url": URLS[name],
                                    "body": body(name, text)}) + "\n")
    return path


def tokens_by_endpoint(results: Path) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = {name: [0, 0, 0] for name in URLS}
    with open(results) as f:
        for line in f:
            o = json.loads(line)
            s = sums[o["custom_id"].split("-")[0]]
            s[0] += o["batchrun"]["input_tokens"]
            s[1] += o["batchrun"]["output_tokens"]
            s[2] += 1
    return sums


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=5000, help="records per endpoint")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    work = fresh_dir("endpoints")
    sim, url = start_sim()
    try:
        inp = mixed_input(work / "mixed.jsonl", a.records)
        sim_reset(url)
        code, wall, _ = batchrun([str(inp), "--base-url", url, "--quiet", "--concurrency", str(a.concurrency)])
        assert code == 0, code
        billed = sim_stats(url)["by_endpoint"]
        ours = tokens_by_endpoint(work / "mixed.results.jsonl")
        print(f"mixed file: {4 * a.records} records, {a.records} per endpoint, {wall:.1f} s")
        for name, (tin, tout, n) in ours.items():
            b = billed[name]
            print(f"RATIO {name:<11} result/billed: records {n}/{b['billed']}, input tokens "
                  f"{tin / b['prompt_tokens']:.6f}, output tokens "
                  f"{(tout / b['completion_tokens']) if b['completion_tokens'] else float(tout == 0):.6f}  (floor 1)")

        plain = make_input(work / "plain.jsonl", a.records)
        rates = dict.fromkeys(URLS, 0.0)
        for _ in range(a.rounds):  # alternate, keep each one's best: less noise on a shared box
            for name in URLS:
                for p in work.glob("plain.results.jsonl*"):
                    p.unlink()
                sim_reset(url)
                code, _, _ = batchrun([str(plain), "--base-url", url, "--quiet", "--model", MODELS[name],
                                       "--endpoint", name, "--concurrency", str(a.concurrency)])
                rate, n = rate_at_server(url)
                rates[name] = max(rates[name], rate)
                assert code == 0 and n == a.records, (name, code, n)
    finally:
        stop(sim)
    for name, rate in rates.items():
        print(f"RATIO {name:<11} req/s / chat req/s = {rate / rates['chat']:.2f}  ({rate:.0f} req/s)")


if __name__ == "__main__":
    main()
