"""batchrun's whole-job wall ÷ the openai-cookbook parallel processor's, same requests, one run.

    python bench/cookbook.py [--script PATH] [--records 5000] [--rounds 3] [--tiktoken auto|real|stand-in]

The other side is `examples/api_request_parallel_processor.py` of the public openai-cookbook
repository. Its code is not in this repository: pass its path with `--script` or
`BATCHRUN_COOKBOOK_SCRIPT`, or leave it at `bench/out/api_request_parallel_processor.py` (ignored
by git); a mirror of the repository under /work/.mirror is read with `git show` when there is one.
Without it the bench says how to get it and exits 0.

Both sides run as processes against one `batchrun mock-server` (zero latency, loopback), walls
from spawn to exit (interpreter start-up included, as a user feels it), alternating sides and
order `--rounds` times; the server counts that each sent every record once. batchrun runs with
its defaults (`--quiet`, default concurrency); the script runs as written — its own pacing loop
(one request per `asyncio.sleep(0.001)`), one aiohttp session — with limits so high its limiter
never binds, `max_attempts` 5, `cl100k_base`, logging at WARNING (its default, INFO, logs a line
per request: slower, so WARNING is the conservative choice).

Two things are supplied at run time, written to a temporary folder, not copied code:
- a runner that imports the script and calls its `process_api_requests_from_file`: the script's
  `api_endpoint_from_url` accepts only `https://` URLs and the simulator is plain http, so the
  runner gives it the endpoint (`chat/completions`) the URL names; it is called once per run.
- tiktoken: the real one when found offline (`--tiktoken real`; a site-packages holding tiktoken
  and regex, by default LiteLLM's venv, which also ships the cl100k_base file under its sha1
  cache name), else (`stand-in`) a module counting about 4 bytes a token: no BPE, so the script
  runs faster than with the real one and the ratio is conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, ROOT, make_input, sim_reset, sim_stats, start_sim, stop  # noqa: E402

SCRIPT_PATH = "examples/api_request_parallel_processor.py"
DEFAULT_SCRIPT = OUT / "api_request_parallel_processor.py"
LITELLM_VENV = os.environ.get("BATCHRUN_LITELLM_VENV", "~/.cache/batchrun-litellm-venv")  # as .ci/run
# tiktoken caches a blob under the sha1 of its URL; this is cl100k_base's (tiktoken checks its
# sha256 on load, so a file found under this name is the real encoding).
CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"

RUNNER = '''\
import asyncio, importlib.util, sys
script, requests, save, url = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("cookbook_processor", script)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
# The script's endpoint parser matches only https:// URLs; the simulator is plain http.
mod.api_endpoint_from_url = lambda u: u.split("/v1/", 1)[1]
asyncio.run(mod.process_api_requests_from_file(
    requests_filepath=requests, save_filepath=save, request_url=url, api_key="bench-key",
    max_requests_per_minute=1e9, max_tokens_per_minute=1e12, token_encoding_name="cl100k_base",
    max_attempts=5, logging_level=30))
'''

# The third side, for scale: the least an aiohttp client can do (bench/throughput.py's bare loop:
# one session, a semaphore, nothing else) as its own process, start-up included.
BARE = """\
import asyncio, sys
from bench.throughput import bare_loop, load_bodies
from pathlib import Path
asyncio.run(bare_loop(sys.argv[1], load_bodies(Path(sys.argv[2])), int(sys.argv[3])))
"""

STAND_IN = '''\
"""A stand-in for tiktoken: about 4 bytes a token, no BPE (faster than the real encoder)."""
class _Encoding:
    def encode(self, text):
        return [0] * (len(text.encode()) // 4 + 1)
def get_encoding(name):
    return _Encoding()
'''


@dataclass(frozen=True)
class Run:
    """One side's job: wall from spawn to exit, and where it went, from the server's clock."""

    wall: float
    startup: float  # spawn to the first request at the server
    sending: float  # first request to the last answer
    tail: float  # last answer to exit
    steady: float  # answers a second over the middle 80 %


def find_script(arg: str | None, tmp: Path) -> Path | None:
    """The cookbook script: the argument, the env var, bench/out, or a mirror's HEAD."""
    given = arg or os.environ.get("BATCHRUN_COOKBOOK_SCRIPT")
    if given:
        return Path(given) if Path(given).is_file() else None
    if DEFAULT_SCRIPT.is_file():
        return DEFAULT_SCRIPT
    for git_dir in sorted(glob.glob("/work/.mirror/openai+openai-cookbook*")):
        shown = subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{SCRIPT_PATH}"],
                               capture_output=True)
        if shown.returncode == 0:
            (tmp / "api_request_parallel_processor.py").write_bytes(shown.stdout)
            return tmp / "api_request_parallel_processor.py"
    return None


def real_tiktoken(tmp: Path) -> dict[str, str] | None:
    """Env for the real tiktoken offline (its packages linked into tmp), or None if not here."""
    sites = [os.environ["BATCHRUN_TIKTOKEN_SITE"]] if "BATCHRUN_TIKTOKEN_SITE" in os.environ else \
        sorted(glob.glob(os.path.expanduser(LITELLM_VENV) + "/lib/python3*/site-packages"))
    for site in map(Path, sites):
        cache = Path(os.environ.get("TIKTOKEN_CACHE_DIR",
                                    site / "litellm" / "litellm_core_utils" / "tokenizers"))
        if not (cache / CL100K_CACHE_NAME).is_file():
            continue
        linked = tmp / "real"
        linked.mkdir(exist_ok=True)
        for pkg in ("tiktoken", "tiktoken_ext", "regex"):  # only these: not the venv's aiohttp
            if (site / pkg).is_dir() and not (linked / pkg).exists():
                (linked / pkg).symlink_to(site / pkg)
        env = {"PYTHONPATH": str(linked), "TIKTOKEN_CACHE_DIR": str(cache)}
        probe = subprocess.run([sys.executable, "-c", "import tiktoken; tiktoken.get_encoding('cl100k_base')"],
                               env={**os.environ, **env}, capture_output=True, timeout=120)
        if probe.returncode == 0:
            return env
    return None


def stand_in_tiktoken(tmp: Path) -> dict[str, str]:
    """Env putting the stand-in tiktoken first on the script's path."""
    (tmp / "stand_in" / "tiktoken").mkdir(parents=True, exist_ok=True)
    (tmp / "stand_in" / "tiktoken" / "__init__.py").write_text(STAND_IN)
    return {"PYTHONPATH": str(tmp / "stand_in")}


def timed(cmd: list[str], env: dict[str, str], url: str, records: int) -> Run:
    """Run one side to its end; check the server answered each record once."""
    sim_reset(url)
    start = time.monotonic()
    proc = subprocess.run(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=600)  # bounded in time like every load
    end = time.monotonic()
    stats = sim_stats(url)
    ok = stats["ok_times"]
    if proc.returncode != 0 or stats["requests"] != records or len(ok) != records:
        sys.exit(f"{cmd[1]}: exit {proc.returncode}, {stats['requests']} requests, {len(ok)} answers "
                 f"for {records} records\n{proc.stderr.decode()[-2000:]}")
    lo, hi = records // 10, records - 1 - records // 10
    # The simulator's clock is CLOCK_MONOTONIC too, so its times and ours line up.
    return Run(wall=end - start, startup=stats["first_request_at"] - start,
               sending=ok[-1] - stats["first_request_at"], tail=end - ok[-1],
               steady=(hi - lo) / (ok[hi] - ok[lo]))


def check_cookbook_output(path: Path, records: int) -> None:
    """Every line of the script's results is an answer, one per record."""
    lines = path.read_text().splitlines()
    answers = sum(1 for line in lines if "choices" in json.loads(line)[1])
    if len(lines) != records or answers != records:
        sys.exit(f"cookbook results: {len(lines)} lines, {answers} answers for {records} records")


def pacing_alone(records: int) -> float:
    """Seconds `records` turns of `asyncio.sleep(0.001)` take here now: the script's pacing loop
    starts at most one request a turn, so its sending can be no shorter than this."""
    async def turns() -> None:
        for _ in range(records):
            await asyncio.sleep(0.001)
    start = time.monotonic()
    asyncio.run(turns())
    return time.monotonic() - start


def describe(name: str, runs: list[Run], records: int) -> None:
    best = min(runs, key=lambda r: r.wall)
    print(f"{name:9} walls {', '.join(f'{r.wall:.2f}' for r in runs)} s; best {best.wall:.2f} s = "
          f"start-up {best.startup:.2f} + sending {best.sending:.2f} + exit {best.tail:.2f}; "
          f"steady {best.steady:.0f} req/s (at that rate alone {records / best.steady:.2f} s: "
          f"ramp and stragglers {best.sending - records / best.steady:+.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", help="path to the cookbook's api_request_parallel_processor.py")
    ap.add_argument("--records", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bare-concurrency", type=int, default=16, help="the bare loop's (batchrun's default)")
    ap.add_argument("--tiktoken", choices=("auto", "real", "stand-in"), default="auto")
    a = ap.parse_args()
    tmp = OUT / "cookbook"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    script = find_script(a.script, tmp)
    if script is None:
        print(f"skipped: the openai-cookbook script is not here. Save {SCRIPT_PATH} of the public "
              f"openai/openai-cookbook repository as {DEFAULT_SCRIPT.relative_to(ROOT)} (or pass "
              "--script PATH / BATCHRUN_COOKBOOK_SCRIPT) and run again.")
        return
    tk_env = None if a.tiktoken == "stand-in" else real_tiktoken(tmp)
    if tk_env is None and a.tiktoken == "real":
        sys.exit("no offline tiktoken with cl100k_base found (set BATCHRUN_TIKTOKEN_SITE and TIKTOKEN_CACHE_DIR)")
    tk_note = "real tiktoken, cl100k_base from a local file"
    if tk_env is None:
        tk_env = stand_in_tiktoken(tmp)
        tk_note = "a stand-in tiktoken (4 bytes a token, no BPE: the script runs faster, the ratio is conservative)"

    inp = make_input(tmp / "in.jsonl", a.records)
    requests = tmp / "requests.jsonl"
    with open(requests, "w") as f:  # the bodies batchrun builds from the same records
        for line in inp.read_text().splitlines():
            rec = json.loads(line)
            f.write(json.dumps({"model": "gpt-4o-mini", "metadata": {"id": rec["id"]},
                                "messages": [{"role": "user", "content": rec["text"]}]}) + "\n")
    save = tmp / "cookbook_results.jsonl"
    (tmp / "runner.py").write_text(RUNNER)

    sim, url = start_sim()
    print(f"cookbook script {script}; {tk_note}")
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    cmds = {  # each side's command and env; batchrun gets a fresh output each round
        "cookbook": lambda i: ([sys.executable, str(tmp / "runner.py"), str(script), str(requests), str(save),
                                url + "/chat/completions"], tk_env),
        "batchrun": lambda i: ([sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url,
                                "--model", "gpt-4o-mini", "--quiet", "--output", str(tmp / f"out{i}.jsonl")],
                               {"BATCHRUN_API_KEY": "bench-key"}),
        "bare loop": lambda i: ([sys.executable, "-c", BARE, url, str(inp), str(a.bare_concurrency)], {}),
    }
    runs: dict[str, list[Run]] = {side: [] for side in cmds}
    try:
        for i in range(a.rounds):
            order = list(cmds)[i % 3:] + list(cmds)[:i % 3]  # each side goes first in turn
            for side in order:
                save.unlink(missing_ok=True)
                runs[side].append(timed(*cmds[side](i), url, a.records))
                if side == "cookbook":
                    check_cookbook_output(save, a.records)
            print(f"round {i + 1} ({', '.join(order)}): "
                  + ", ".join(f"{side} {runs[side][-1].wall:.2f} s" for side in cmds)
                  + f"; load {os.getloadavg()[0]:.2f}")
    finally:
        stop(sim)
    print(f"{a.records} records, zero latency, one simulator, {a.rounds} rounds alternating:")
    for side, side_runs in runs.items():
        describe(side, side_runs, a.records)
    ours, theirs, bare = runs["batchrun"], runs["cookbook"], runs["bare loop"]
    per_round = [o.wall / t.wall for o, t in zip(ours, theirs, strict=True)]
    print(f"per round batchrun/cookbook: {', '.join(f'{r:.3f}' for r in per_round)} "
          f"(median {statistics.median(per_round):.3f})")
    best = min(r.wall for r in ours) / min(r.wall for r in theirs)
    pacing = pacing_alone(a.records)
    print(f"the script's pacing alone ({a.records} x asyncio.sleep(0.001), nothing sent): {pacing:.2f} s; "
          f"0.12 x that is {0.12 * pacing:.2f} s")
    print(f"for scale, the bare aiohttp loop (concurrency {a.bare_concurrency}) wall/cookbook wall, best of each: "
          f"{min(r.wall for r in bare) / min(r.wall for r in theirs):.3f}")
    print(f"RATIO cookbook batchrun wall/cookbook wall (best of {a.rounds} each) = {best:.3f}  (floor <= 0.12)")


if __name__ == "__main__":
    main()
