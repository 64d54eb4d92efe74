"""Start-up: a command loads only its own module, with the same help and errors as when every
command is loaded; a plain live job imports only what it runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from batchrun.cli import app

PROG = "python -m batchrun"
ENV = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def _child(args: list[str]) -> tuple[int, str]:
    """`python -m batchrun ARGS` in a fresh interpreter: only the named command's module loads."""
    p = subprocess.run([sys.executable, "-m", "batchrun", *args], env=ENV, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("args", [
    ["--help"], [], ["process", "--help"], ["estimate", "--help"], ["mock-server", "--help"], ["procss"],
])
def test_help_and_errors_are_the_same_with_one_command_loaded(args: list[str]) -> None:
    # in this process every command is loaded (listing them loads all)
    whole = CliRunner().invoke(app, args, prog_name=PROG, env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    code, out = _child(args)
    assert (code, out) == (whole.exit_code, whole.output)
    assert out.strip()
