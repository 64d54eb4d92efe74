"""The command a stop's hint tells the user to run: the one that was run, less the flags that
act once. Followed, it continues the job; it never starts it over nor re-sends finished work."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from batchrun.secret import ApiKey, redact_text

# --fresh moves the results aside and pays for them again; --retry-failed already took the failed
# lines out of the output (a plain resume sends them), and given again it would also re-send the
# records that failed in the stopped run.
ONE_SHOT_FLAGS = ("--fresh", "--retry-failed")


def resume_argv(argv: Sequence[str]) -> list[str]:
    """argv without the one-shot flags (a `--` ends the options: what follows is kept)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        if arg not in ONE_SHOT_FLAGS:
            out.append(arg)
    return out


def resume_command(api_key: ApiKey, argv: Sequence[str] | None = None, max_cost: float | None = None,
                   also: str | None = None) -> str:
    """The command to run to continue this job, for a person to copy (no key in it); with max_cost,
    one that sets --max-cost to it (a budget stop's rerun with the old cap would stop at once)."""
    args = resume_argv(sys.argv[1:] if argv is None else argv)
    if max_cost is not None:
        args = with_option(args, "--max-cost", f"{max_cost:g}")
    if also is not None and also not in args:  # a flag the next step needs (--batch-api)
        end = args.index("--") if "--" in args else len(args)
        args = [*args[:end], also, *args[end:]]
    return redact_text(shlex.join(["batchrun", *args]), api_key)


def with_option(argv: Sequence[str], option: str, value: str) -> list[str]:
    """argv with `option` set to value: replaced where it is given, added where it is not."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == option:
            i += 2
            continue
        if not arg.startswith(option + "="):
            out.append(arg)
        i += 1
    return [*out, option, value, *argv[i:]]
