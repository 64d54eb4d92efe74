"""Failures the simulator injects: which one a request gets, and what each one looks like.

Kinds: "429" (before any work), "500", "reset" (the connection is closed), "bad_body" (a 200
whose JSON breaks off), "html" (a 200 that is a proxy's HTML error page) and "timeout" (the
answer comes only after `hang_s`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from batchrun.sim.answers import error_body
from batchrun.sim.config import SimConfig

# How long an injected 429 asks to wait: short, so that tests of retrying stay fast.
INJECTED_WAIT_MS = 10

QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request ends as, before it is written: a status and body, or a reset (status 0)."""

    status: int
    body: bytes = b""
    billed: bool = False  # a real answer, generated and charged

    @property
    def reset(self) -> bool:
        """The connection is to be closed without an answer."""
        return self.status == 0


RESET = Outcome(0)
TRUNCATED = Outcome(200, b'{"id": "chatcmpl-x", "choi')
# what a proxy in front of the API sends when its upstream hiccups, with status 200 all the same
HTML_PAGE = Outcome(200, b"<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>")
SERVER_ERROR = Outcome(500, error_body(500, "server_error", "Injected server error."))
UNAVAILABLE = Outcome(503, error_body(503, "overloaded", "Injected: the service is unavailable."))


def pick_fault(config: SimConfig, attempt: int, rng: random.Random) -> str | None:
    """The failure this request gets, if any: the first `fail_first` attempts of every prompt
    fail in turn through `fail_kinds`; after that, `error_rate` of requests fail at random."""
    if config.fail_first and attempt <= config.fail_first:
        return config.fail_kinds[(attempt - 1) % len(config.fail_kinds)]
    if config.error_rate and rng.random() < config.error_rate:
        return rng.choice(config.error_kinds)
    return None


def fault_outcome(kind: str) -> Outcome | None:
    """The outcome that replaces the answer for a fault found after the latency, else None."""
    return {"500": SERVER_ERROR, "503": UNAVAILABLE, "reset": RESET, "bad_body": TRUNCATED,
            "html": HTML_PAGE}.get(kind)


def injected_429_headers(mode: str) -> dict[str, str]:
    """An injected 429's wait hint, in the forms the retry_after mode allows."""
    out: dict[str, str] = {}
    if mode in ("both", "seconds"):
        out["retry-after"] = "1"  # whole seconds cannot say 10 ms: rounded up, as for a real wait
    if mode in ("both", "ms"):
        out["retry-after-ms"] = str(INJECTED_WAIT_MS)
    return out


def quota_body() -> bytes:
    """The 429 body of an account out of credit (OpenAI's insufficient_quota)."""
    return error_body(429, "insufficient_quota", QUOTA_MESSAGE, kind="insufficient_quota")
