"""Start-up: a command loads only its own module, with the same help and errors as when every
command is loaded; a plain live job imports only what it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.cli.app import COMMANDS

from .conftest import plain_records, write_jsonl

PROG = "python -m batchrun"
ENV = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def _child(args: list[str]) -> tuple[int, str]:
    """`python -m batchrun ARGS` in a fresh interpreter: only the named command's module loads."""
    p = subprocess.run([sys.executable, "-m", "batchrun", *args], env=ENV, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("args", [["--help"], [], ["procss"], *([name, "--help"] for name in COMMANDS)])
def test_help_and_errors_are_the_same_with_one_command_loaded(args: list[str]) -> None:
    # in this process every command is loaded (listing them loads all)
    whole = CliRunner().invoke(app, args, prog_name=PROG, env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    code, out = _child(args)
    assert (code, out) == (whole.exit_code, whole.output)
    assert out.strip()


# What a plain live job has no use for: each would be imported (and its dataclasses built) at
# every start of every cron run.
NOT_FOR_A_PLAIN_JOB = (
    "batchrun.batch", "batchrun.job.batch_api", "batchrun.route.deadline", "batchrun.route.batch_pace",
    "batchrun.show.deadline", "batchrun.input.chunks", "batchrun.send.chunked", "batchrun.cli.inspect",
    "batchrun.cli.batches", "batchrun.cli.export", "batchrun.cli.simulate", "batchrun.cli.providers",
    "batchrun.commands.report", "batchrun.input.parts", "batchrun.route.canary", "batchrun.route.shadow",
    "batchrun.results.shadow_file", "zoneinfo", "tomllib", "rich._emoji_codes", "pydantic",
)

_JOB = """
import atexit, sys
from batchrun.cli import main

def dump() -> None:  # atexit: main() ends the process itself once the command is over
    with open({out!r}, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))

atexit.register(dump)
sys.argv = ["batchrun", *sys.argv[2:]]
main()
"""


def test_a_plain_live_job_imports_only_what_it_runs(tmp_path: Path, sim_factory: Any) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    out = tmp_path / "modules.txt"
    child = subprocess.run([sys.executable, "-c", _JOB.format(out=str(out)), "-", "process", str(inp),
                            "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"],
                           env={**ENV, "BATCHRUN_API_KEY": "sk-test"}, cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    modules = out.read_text().splitlines()
    assert child.returncode == 0 and "batchrun.job.pipeline" in modules  # the job ran
    # ended by main() itself: its atexit handler ran (above) and its last line is out whole
    assert child.stdout.endswith(f"output {tmp_path / 'in.results.jsonl'}\n"), child.stdout
    loaded = [m for m in modules if m.startswith(NOT_FOR_A_PLAIN_JOB)]
    assert loaded == []


_END = """
import sys, threading
from batchrun.cli import main

def command() -> None:
    if sys.argv[1] == "thread":  # a thread still running when the command exits: Python waits for it
        out = open(sys.argv[2], "w")
        threading.Thread(target=lambda: (sys.stdin.read(), out.write("done"), out.close())).start()
    print("ready", flush=True)
    raise SystemExit({"thread": 3, "code": 4, "message": "bye"}[sys.argv[1]])

sys.modules["batchrun.cli.app"].app = command  # main() runs this as the command
main()
"""


@pytest.mark.parametrize("how", ["code", "message", "thread"])
def test_the_process_ends_with_the_commands_exit_status_and_waits_for_its_threads(tmp_path: Path, how: str) -> None:
    done = tmp_path / "done"
    with subprocess.Popen([sys.executable, "-c", _END, how, str(done)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        assert p.stdout is not None and p.stdin is not None and p.stderr is not None
        assert p.stdout.readline() == "ready\n"
        p.stdin.close()  # the thread, if any, ends now: after main() has looked for threads
        assert p.wait(60) == {"code": 4, "message": 1, "thread": 3}[how]
        assert p.stderr.read() == ("bye\n" if how == "message" else "")
    assert done.exists() == (how == "thread") and (how != "thread" or done.read_text() == "done")
