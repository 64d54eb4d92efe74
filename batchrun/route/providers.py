"""Configured providers (`[providers.NAME]`) and the names models are addressed by.

A model is addressed as `NAME/model` when NAME is a configured provider; any other name, slashes
and all, goes whole to the default endpoint (`--base-url`), so `meta-llama/Llama-3-8b` on a vLLM
server keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from batchrun.errors import ConfigError
from batchrun.secret import ApiKey, redact_url

_PROVIDER_KEYS = {"base_url", "api_key_env", "rpm", "tpm", "headers", "extra_body", "batch_queue_tokens", "flex",
                  "flex_wait_s"}
# headers batchrun sets itself: a provider's `headers` table may not replace them
_OWN_HEADERS = {"authorization", "content-type", "content-length", "host", "user-agent"}


@dataclass(frozen=True, slots=True)
class Provider:
    """One configured provider. The key is read from the environment, never from a file."""

    name: str
    base_url: str
    api_key: ApiKey
    api_key_env: str | None
    rpm: float | None = None
    tpm: float | None = None
    headers: tuple[tuple[str, str], ...] = ()  # added to every request to this provider
    extra_body: tuple[tuple[str, Any], ...] = ()  # merged into every request body to it
    batch_queue_tokens: float | None = None  # --batch-api: each model's enqueued-token limit here
    flex: bool = False  # --deadline: offers flex processing (service_tier "flex"), a third path
    flex_wait_s: float | None = None  # the longest a flex answer is expected to take (None: FLEX_WAIT_S)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a model name sends a request: its provider (None: the default endpoint) and the
    model the provider is asked for."""

    name: str  # as the user wrote it: "deepseek/deepseek-chat"
    provider: str | None
    model: str  # as the provider knows it: "deepseek-chat"


class Targets:
    """Splits model names into targets, once per name."""

    def __init__(self, providers: Iterable[str] = ()) -> None:
        self.names = frozenset(providers)
        self._cache: dict[str, Target] = {}

    def __call__(self, name: str) -> Target:
        t = self._cache.get(name)
        if t is None:
            prefix, sep, rest = name.partition("/")
            if sep and rest and prefix in self.names:
                t = Target(name, prefix, rest)
            else:
                t = Target(name, None, name)
            self._cache[name] = t
        return t


def parse_providers(table: Any, env: Mapping[str, str], where: str) -> tuple[Provider, ...]:
    """The `[providers]` tables; ConfigError naming the table and key for a bad one."""
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [providers] must hold one table per provider, as [providers.NAME]")
    return tuple(_provider(name, t, env, where) for name, t in table.items())


API_URL = "an http(s) URL without a query (a host, and a port that is a number if any)"


def api_url(v: Any) -> str:
    """An API's base URL (--base-url, a provider's base_url): http(s), a host, no query or
    fragment; ValueError otherwise."""
    if not isinstance(v, str) or not v.strip():
        raise ValueError
    v = v.strip()
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError  # a query would land before the endpoint's path
    parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    return v.rstrip("/")


def _provider(name: str, t: Any, env: Mapping[str, str], where: str) -> Provider:
    here = f"{where}: [providers.{name}]"
    if not isinstance(t, dict):
        raise ConfigError(f"{here} must be a table with base_url and api_key_env")
    if not name or "/" in name:
        raise ConfigError(f"{here}: a provider's name cannot be empty or hold '/'")
    if "api_key" in t:  # never echo it: it may be a real key
        raise ConfigError(f"{here}: api_key: keys are never read from a file; name the environment "
                          "variable that holds it with api_key_env")
    unknown = sorted(set(t) - _PROVIDER_KEYS)
    if unknown:
        raise ConfigError(f"{here}: unknown key {unknown[0]!r} (expected base_url, api_key_env, rpm, tpm, "
                          "headers, extra_body, batch_queue_tokens, flex, flex_wait_s)")
    url = t.get("base_url")
    if url is None:
        raise ConfigError(f"{here}: base_url is missing (the provider's API root, e.g. https://api.deepseek.com/v1)")
    try:
        api_url(url)  # the same rule as --base-url; the value is kept as written (the job's identity)
    except (ValueError, TypeError):
        shown = redact_url(url) if isinstance(url, str) else url
        raise ConfigError(f"{here}: base_url must be {API_URL}, got {shown!r}") from None
    key_env = t.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not key_env.isidentifier()):
        # a value that is no variable name may be a key pasted in its place: never echo it
        raise ConfigError(f"{here}: api_key_env must name an environment variable (the value is not shown)")
    value = env.get(key_env, "").strip() if key_env else ""
    limits = {}
    for k in ("rpm", "tpm", "batch_queue_tokens", "flex_wait_s"):
        v = t.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0):
            raise ConfigError(f"{here}: {k} must be a number above 0, got {v!r}")
        limits[k] = None if v is None else float(v)
    if not isinstance(t.get("flex", False), bool):
        raise ConfigError(f"{here}: flex must be true or false, got {t['flex']!r}")
    return Provider(name, url.rstrip("/"), ApiKey(value or None), key_env, **limits, flex=t.get("flex", False),
                    headers=_headers(t.get("headers"), here), extra_body=_extra_body(t.get("extra_body"), here))


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's token: what a header name may be


def header_problem(name: Any, value: Any) -> str | None:
    """What is wrong with a request header, None if nothing: a name HTTP allows, a one-line
    string value (a line break would let it write headers of its own)."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"the header name {name!r} is not one HTTP allows"
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        return f"the header {name!r} must be a one-line string, without a line break (the value is not shown)"
    return None


def _headers(t: Any, here: str) -> tuple[tuple[str, str], ...]:
    """A provider's `headers` table: names to string values (a secret belongs in api_key_env)."""
    if t is None:
        return ()
    if not isinstance(t, dict):
        raise ConfigError(f'{here}: headers must be a table of names to values, e.g. {{ "x-litellm-model" = "m" }}')
    for k, v in t.items():
        if k.lower() in _OWN_HEADERS:
            raise ConfigError(f"{here}: headers: {k!r} is set by batchrun (the key comes from api_key_env)")
        if (problem := header_problem(k, v)) is not None:
            raise ConfigError(f"{here}: headers: {problem}")
    return tuple(t.items())


def _extra_body(t: Any, here: str) -> tuple[tuple[str, Any], ...]:
    """A provider's `extra_body` table, merged into every request body (LiteLLM's num_retries)."""
    if t is None:
        return ()
    if not isinstance(t, dict):
        raise ConfigError(f"{here}: extra_body must be a table, e.g. {{ num_retries = 0 }}")
    if "model" in t:
        raise ConfigError(f"{here}: extra_body: model is chosen by --model, routes and the canary, not here")
    return tuple(t.items())


def check_keys(providers: Iterable[Provider], used: Iterable[str], where: str, loopback: Any) -> None:
    """Every provider a model name uses has its key set (a loopback server may go keyless)."""
    names = {p.name: p for p in providers}
    targets = Targets(names)
    for model in used:
        t = targets(model)
        p = names.get(t.provider or "")
        # a local server (Ollama, vLLM) may go keyless, unless the config names a variable to read
        if p is None or p.api_key.reveal() is not None or (loopback(p.base_url) and p.api_key_env is None):
            continue
        if p.api_key_env is None:
            raise ConfigError(f"{where}: [providers.{p.name}] has no api_key_env, and {model} uses it")
        raise ConfigError(f"{where}: [providers.{p.name}] api_key_env: {p.api_key_env} is not set in the "
                          f"environment, and {model} uses it")


def describe(p: Provider) -> dict[str, Any]:
    """What may be shown of a provider: never its key."""
    return {"name": p.name, "base_url": redact_url(p.base_url), "api_key_env": p.api_key_env}
