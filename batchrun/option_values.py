"""How each `process` option's value is parsed, and what a good value is (for the error).

A parser raises ValueError or TypeError for a bad value; config.resolve turns that into one
sentence naming the option, its source and what was expected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batchrun.errors import ConfigError
from batchrun.input.endpoints import ENDPOINTS
from batchrun.route.providers import API_URL, api_url
from batchrun.route.when import GOOD, MARGIN_GOOD, parse_margin, parse_when


def _pos_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, str):
        v = int(v.strip())
    if not isinstance(v, int) or v < 1:
        raise ValueError
    return v


def _pos_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError
    f = float(v)
    if not f > 0 or f == float("inf"):
        raise ValueError
    return f


def _nonneg_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError
    f = float(v)
    if not f >= 0 or f == float("inf"):
        raise ValueError
    return f


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError
    return v


def _nonempty(v: Any) -> str:
    v = _text(v).strip()
    if not v:
        raise ValueError
    return v


def _env_name(v: Any) -> str:
    v = _nonempty(v)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
        raise ValueError
    return v


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.lower() in ("1", "true", "yes", "on")
    raise ValueError


def _models(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [m for m in v.split(",") if m.strip()]
    if not isinstance(v, list | tuple):
        raise ValueError
    return tuple(_nonempty(m) for m in v)


def _endpoint(v: Any) -> str:
    v = _nonempty(v).lower()
    if v not in ENDPOINTS:
        raise ValueError
    return v


def _path(v: Any) -> Path:
    return v if isinstance(v, Path) else Path(_nonempty(v)).expanduser()

def is_loopback(url: str) -> bool:
    """Whether a URL's host is this machine (a local server needs no key)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _part(v: Any) -> Any:
    from batchrun.input.parts import parse_part  # only for --part: a plain job never loads input.parts

    return parse_part(v)


def _redis_url(v: Any) -> str:
    v = _nonempty(v)
    parts = urlsplit(v)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.netloc or parts.path):
        raise ValueError
    return v


def _batch_size(v: Any) -> int:
    n = _pos_int(v)
    if n > 50_000:  # the Batch API takes at most 50,000 requests in one batch
        raise ValueError
    return n


def _batch_expired(v: Any) -> str:
    if v not in ("resubmit", "live"):
        raise ValueError
    return str(v)

def _chunk_share(v: Any) -> float:
    v = float(v) if isinstance(v, int | float | str) and not isinstance(v, bool) else -1.0
    if not 0.0 < v <= 1.0:
        raise ValueError
    return v

# name: (parser, what a good value is)
OPTIONS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "model": (_nonempty, "a model name"),
    "model_field": (_nonempty, "the name of a field of the plain records"),
    "base_url": (api_url, API_URL),
    "api_key_env": (_env_name, "the name of an environment variable (the key itself is never taken)"),
    "concurrency": (_pos_int, "a whole number of at least 1"),
    "rpm": (_pos_float, "a positive number of requests per minute"),
    "tpm": (_pos_float, "a positive number of tokens per minute"),
    "max_attempts": (_pos_int, "a whole number of at least 1"),
    "timeout": (_pos_float, "a positive number of seconds"),
    "max_request_time": (_pos_float, "a positive number of seconds"),
    "max_wait": (_nonneg_float, "a number of seconds, 0 or more"),
    "retry_base": (_pos_float, "a positive number of seconds"),
    "max_cost": (_nonneg_float, "a number of USD, 0 or more"),
    "prices": (_path, "a path to a TOML prices file"),
    "template": (_text, "a text with {field} placeholders"),
    "system": (_text, "a text"),
    "max_tokens": (_pos_int, "a whole number of at least 1"),
    "endpoint": (_endpoint, "chat, embeddings, completions or responses"),
    "default_max_output": (_pos_int, "a whole number of at least 1"),
    "fallback_model": (_models, "model names"),
    "simulate": (_bool, "true or false"),
    "summary_json": (_path, "a file path"),
    "fresh": (_bool, "true or false"),
    "retry_failed": (_bool, "true or false"),
    "quiet": (_bool, "true or false"),
    "shared_limits": (_redis_url, "a Redis URL (redis://HOST:PORT/DB, rediss://...)"),
    "shared_limits_required": (_bool, "true or false"),
    "part": (_part, "K/N, part K of N with 1 <= K <= N"),
    "parts": (_pos_int, "a whole number of parts, at least 1"),
    "drain_timeout": (_nonneg_float, "a number of seconds, 0 or more"),
    "max_line_bytes": (_pos_int, "a whole number of bytes"),
    "log_file": (_path, "a file path"),
    "progress_interval": (_pos_float, "a positive number of seconds"),
    "output": (_path, "a file path"),
    "batch_api": (_bool, "true or false"),
    "batch_size": (_batch_size, "a whole number from 1 to 50000"),
    "batch_expired": (_batch_expired, "resubmit or live"),
    "no_wait": (_bool, "true or false"),
    "deadline": (lambda v: parse_when(_nonempty(v)), GOOD),
    "deadline_margin": (lambda v: parse_margin(_nonempty(v)), MARGIN_GOOD),
    "batch_queue_tokens": (_pos_int, "a whole number of tokens, at least 1"),
    "chunk_long": (_bool, "true or false"),
    "chunk_share": (_chunk_share, "a share of the context window, over 0 and up to 1"),
}
# Options that are never read from the environment (the key is read from its own variable).
NOT_FROM_ENV = {"output", "fresh", "retry_failed"}


def check_batch_options(values: dict[str, Any]) -> None:
    """Batch API settings without --batch-api do nothing, and a cron user would pay live prices
    unawares: refused."""
    if "deadline_margin" in values and "deadline" not in values:
        raise ConfigError("--deadline-margin needs --deadline (it is how early a deadline's plan aims to finish)")
    if "deadline" in values and values.get("no_wait"):
        raise ConfigError("--deadline with --no-wait: a deadline's plan is kept by looking at the batches "
                          "often; run without --no-wait")
    if values.get("batch_api"):
        return
    # --deadline plans through the Batch API too: the queue's limit is one of the things it knows
    for name in ("no_wait", "batch_size", "batch_expired", *(() if "deadline" in values else ("batch_queue_tokens",))):
        if name in values and values[name] is not False:
            raise ConfigError(f"--{name.replace('_', '-')} needs --batch-api (it is a Batch API setting; "
                              "without --batch-api every record is sent live, at full price)")


def check_text(values: dict[str, Any]) -> None:
    """Refuse option text that is not UTF-8: argv bytes that are not arrive as lone surrogates,
    which no request body or checkpoint can hold."""
    check_batch_options(values)
    for name, value in values.items():
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(f"--{name.replace('_', '-')} holds bytes that are not UTF-8 text; check the "
                                  "terminal's or the script's encoding") from None
