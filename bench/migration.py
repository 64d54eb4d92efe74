"""Migration floors as a user feels them: whole jobs, counted at the servers.

    python bench/migration.py [--records 400]

1. Canary rollback: the canary's server fails 25 % of requests (500s); share 0.5, window 50.
   Prints requests the canary's server received (floor: at most 150) and records succeeded.
2. Failover: one provider answers every request 503, `--fallback-model` names another.
   Prints requests the dead provider received (floor: at most 150 of the records') and the
   job's wall time.
3. Ramp: a healthy canary with ramp [0.1, 0.5, 1.0], window 20: its state at the end and the
   share of records it answered.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import batchrun, fresh_dir, make_input, sim_stats, start_sim, stop  # noqa: E402


def config(d: Path, old: str, new: str, extra: str = "") -> Path:
    path = d / "batchrun.toml"
    path.write_text(f'[providers.old]\nbase_url = "{old}"\napi_key_env = "BATCHRUN_API_KEY"\n'
                    f'[providers.new]\nbase_url = "{new}"\napi_key_env = "BATCHRUN_API_KEY"\n{extra}')
    return path


def job(d: Path, inp: Path, cfg: Path, *extra: str) -> tuple[int, float, dict]:
    summary = d / "summary.json"
    rc, wall, _ = batchrun([str(inp), "--config", str(cfg), "--model", "old/gpt-4o-mini", "--quiet",
                            "--fresh", "--summary-json", str(summary), *extra])
    return rc, wall, json.loads(summary.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=400)
    a = ap.parse_args()
    d = fresh_dir("migration")
    inp = make_input(d / "in.jsonl", a.records)
    scenarios = [
        ("canary rollback", ("--latency-ms", "5", "--error-rate", "0.25", "--error-kinds", "500"),
         '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\nwindow = 50\n', ()),
        ("failover", ("--latency-ms", "5"), "", ("--fallback-model", "new/deepseek-chat")),
        ("ramp", ("--latency-ms", "5"), '[canary]\nmodel = "new/deepseek-chat"\nramp = [0.1, 0.5, 1.0]\nwindow = 20\n',
         ("--concurrency", "4")),
    ]
    for name, new_flags, extra, flags in scenarios:
        old_flags = ("--error-rate", "1", "--error-kinds", "503") if name == "failover" else ("--latency-ms", "5")
        old, old_url = start_sim(*old_flags)
        new, new_url = start_sim(*new_flags)
        try:
            rc, wall, s = job(d, inp, config(d, old_url, new_url, extra), *flags)
            at_old, at_new = sim_stats(old_url)["requests"], sim_stats(new_url)["requests"]
        finally:
            stop(old)
            stop(new)
        ok = s["records"]["succeeded"]
        line = (f"{name}: exit {rc}, {wall:.1f} s, {ok}/{a.records} records succeeded; "
                f"requests at old {at_old}, new {at_new}")
        if "canary" in s:
            c = s["canary"]
            line += f"; canary {c['state']} after {c['judged']} judged answers ({c['reason']})"
        print(line)


if __name__ == "__main__":
    main()
