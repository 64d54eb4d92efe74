"""A real LiteLLM proxy on 127.0.0.1 in front of simulators, for the `gateway` test tier.

LiteLLM lives in its own virtualenv (it is large and pins what it needs): BATCHRUN_LITELLM, else
/work/litellm-venv/bin/litellm, else ~/.cache/batchrun-litellm-venv/bin/litellm. No database, no
network beyond loopback: the local cost map, no telemetry, no proxy variables."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

GATEWAY_KEY = "sk-gateway-master-0000"
UPSTREAM_KEY = "sk-upstream-1111"
CANDIDATES = ("/work/litellm-venv/bin/litellm", str(Path.home() / ".cache/batchrun-litellm-venv/bin/litellm"))


def litellm_binary() -> str | None:
    """The LiteLLM proxy's executable, or None when none is installed."""
    for path in (os.environ.get("BATCHRUN_LITELLM"), *CANDIDATES, shutil.which("litellm")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Gateway:
    url: str  # the proxy's OpenAI-compatible root, .../v1
    log: Path


def config_yaml(upstreams: Mapping[str, tuple[str, str]]) -> str:
    """model_list: alias -> (upstream base URL, upstream model). JSON is YAML."""
    models = [{"model_name": alias, "litellm_params": {"model": f"openai/{model}", "api_base": base,
                                                       "api_key": UPSTREAM_KEY}}
              for alias, (base, model) in upstreams.items()]
    return json.dumps({"model_list": models, "general_settings": {"master_key": GATEWAY_KEY},
                       "litellm_settings": {"telemetry": False}})


@contextlib.contextmanager
def litellm_proxy(binary: str, upstreams: Mapping[str, tuple[str, str]], tmp: Path,
                  start_timeout_s: float = 120.0) -> Iterator[Gateway]:
    """Start `litellm --config X --port P --host 127.0.0.1`; wait until it answers; stop it after."""
    cfg = tmp / "litellm.yaml"
    cfg.write_text(config_yaml(upstreams))
    port = free_port()
    log = tmp / "litellm.log"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("DATABASE")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_PROXY="*",
               LITELLM_LOG="ERROR", DISABLE_SCHEMA_UPDATE="True")
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"litellm exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/health/liveliness", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"litellm did not start in {start_timeout_s:g} s: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield Gateway(base + "/v1", log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
