"""RunConfig and where its values come from: flags > environment > batchrun.toml > defaults.

Every `process` option may be set in batchrun.toml (top level or a `[process]` table, dashes or
underscores alike) and in the environment as BATCHRUN_<NAME>. A bad value anywhere is one
sentence naming the option and its source, raised as ConfigError before anything is sent.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batchrun.account.pricing import Price, load_prices_file, parse_price_tables
from batchrun.errors import ConfigError
from batchrun.input.lines import DEFAULT_MAX_LINE_BYTES
from batchrun.input.shapes import LineParser, Shaping
from batchrun.input.tokens import DEFAULT_MAX_OUTPUT_TOKENS
from batchrun.secret import ApiKey
from batchrun.send.retry import DEFAULT_MAX_ATTEMPTS

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CONFIG = "batchrun.toml"
KEY_ENVS = ("BATCHRUN_API_KEY", "OPENAI_API_KEY")
# --simulate with no --model: a model the simulator serves and the price snapshot knows.
SIMULATE_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class RunConfig:
    """Everything one `process` run needs, validated."""

    input: Path
    output: Path
    model: str | None = None
    base_url: str = DEFAULT_BASE_URL
    api_key: ApiKey = field(default_factory=lambda: ApiKey(None))
    api_key_env: str = " or ".join(KEY_ENVS)  # where the key was read from, for messages
    concurrency: int = 16
    rpm: float | None = None
    tpm: float | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = 120.0
    retry_base: float = 0.5
    max_cost: float | None = None
    prices: dict[str, Price] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    default_max_output: int = DEFAULT_MAX_OUTPUT_TOKENS
    fallback_models: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    context_windows: tuple[tuple[str, int], ...] = ()
    simulate: bool = False
    summary_json: Path | None = None
    fresh: bool = False
    retry_failed: bool = False
    quiet: bool = False
    drain_timeout: float = 30.0
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    log_file: Path | None = None
    progress_interval: float | None = None

    def parser(self) -> LineParser:
        """The line parser these options shape requests with."""
        return LineParser(
            Shaping(self.model, self.template, self.system, self.max_tokens, self.default_max_output, self.aliases),
            self.max_line_bytes,
        )

    def identity(self) -> dict[str, Any]:
        """The request-shaping options: changing one makes it another job."""
        return {
            "model": self.model,
            "template": self.template,
            "system": self.system,
            "base_url": "simulator" if self.simulate else self.base_url,
            "prices": sorted(
                [n, str(p.input.base), str(p.output.base),
                 str(p.cached_input.base) if p.cached_input else None]
                for n, p in self.prices.items()
            ),
            "max_tokens": self.max_tokens,
            "aliases": [list(a) for a in self.aliases],
        }


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


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.lower() in ("1", "true", "yes", "on")
    raise ValueError


def _url(v: Any) -> str:
    v = _nonempty(v)
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError
    return v.rstrip("/")


def _models(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [m for m in v.split(",") if m.strip()]
    if not isinstance(v, list | tuple):
        raise ValueError
    return tuple(_nonempty(m) for m in v)


def _path(v: Any) -> Path:
    return v if isinstance(v, Path) else Path(_nonempty(v)).expanduser()

# name: (parser, what a good value is)
OPTIONS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "model": (_nonempty, "a model name"),
    "base_url": (_url, "an http(s) URL"),
    "api_key_env": (_nonempty, "an environment variable name"),
    "concurrency": (_pos_int, "a whole number of at least 1"),
    "rpm": (_pos_float, "a positive number of requests per minute"),
    "tpm": (_pos_float, "a positive number of tokens per minute"),
    "max_attempts": (_pos_int, "a whole number of at least 1"),
    "timeout": (_pos_float, "a positive number of seconds"),
    "retry_base": (_pos_float, "a positive number of seconds"),
    "max_cost": (_nonneg_float, "a number of USD, 0 or more"),
    "prices": (_path, "a path to a TOML prices file"),
    "template": (_text, "a text with {field} placeholders"),
    "system": (_text, "a text"),
    "max_tokens": (_pos_int, "a whole number of at least 1"),
    "default_max_output": (_pos_int, "a whole number of at least 1"),
    "fallback_model": (_models, "model names"),
    "simulate": (_bool, "true or false"),
    "summary_json": (_path, "a file path"),
    "fresh": (_bool, "true or false"),
    "retry_failed": (_bool, "true or false"),
    "quiet": (_bool, "true or false"),
    "drain_timeout": (_nonneg_float, "a number of seconds, 0 or more"),
    "max_line_bytes": (_pos_int, "a whole number of bytes"),
    "log_file": (_path, "a file path"),
    "progress_interval": (_pos_float, "a positive number of seconds"),
    "output": (_path, "a file path"),
}
# Options that are never read from the environment (the key is read from its own variable).
_NOT_FROM_ENV = {"output", "fresh", "retry_failed"}


def read_config_file(path: Path | None) -> tuple[dict[str, Any], str]:
    """The config file's table and its name for messages; {} when there is none."""
    explicit = path is not None
    path = path or Path(DEFAULT_CONFIG)
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}, str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    return doc, str(path)


def _norm(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k.replace("-", "_"): v for k, v in doc.items()}


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    need_key: bool = True,
) -> RunConfig:
    """Merge flags, environment and config file into a validated RunConfig.

    need_key=False for commands that send nothing (`estimate`) or may go keyless.
    """
    env = os.environ if env is None else env
    doc, doc_name = read_config_file(config_path)
    file_opts = _norm({k: v for k, v in doc.items() if not isinstance(v, dict)})
    if isinstance(doc.get("process"), dict):
        file_opts.update(_norm(doc["process"]))
    unknown = sorted(set(file_opts) - set(OPTIONS) - {"fallback_models"})
    if unknown:
        raise ConfigError(f"config file {doc_name}: unknown option {unknown[0]!r}")
    if "fallback_models" in file_opts:
        file_opts["fallback_model"] = file_opts.pop("fallback_models")

    values: dict[str, Any] = {}
    for name, (parse, good) in OPTIONS.items():
        raw, source = None, None
        flag = flags.get(name)
        if flag is not None and flag != () and flag is not False:
            raw, source = flag, f"--{name.replace('_', '-')}"
        elif name not in _NOT_FROM_ENV and f"BATCHRUN_{name.upper()}" in env:
            raw, source = env[f"BATCHRUN_{name.upper()}"], f"environment BATCHRUN_{name.upper()}"
        elif name == "base_url" and "OPENAI_BASE_URL" in env:
            raw, source = env["OPENAI_BASE_URL"], "environment OPENAI_BASE_URL"
        elif name in file_opts:
            raw, source = file_opts[name], f"config file {doc_name}"
        if source is None:
            continue
        try:
            values[name] = parse(raw)
        except (ValueError, TypeError):
            raise ConfigError(f"invalid {name.replace('_', '-')} from {source}: expected {good}, "
                              f"got {raw!r}") from None

    prices: dict[str, Price] = {}
    if isinstance(doc.get("prices"), dict):
        prices.update(parse_price_tables(doc["prices"].get("models", {}), f"config file {doc_name}"))
    if "prices" in values:
        prices.update(load_prices_file(values.pop("prices")))
    aliases = _string_table(doc.get("aliases", {}), f"config file {doc_name}: [aliases]")
    windows = doc.get("context_windows", {})
    if not isinstance(windows, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in windows.values()
    ):
        raise ConfigError(f"config file {doc_name}: [context_windows] must map models to token counts")

    input_path: Path = flags.get("input") or Path("-")
    output = values.pop("output", None) or default_output(input_path)
    simulate = values.get("simulate", False)
    key, key_source = _read_key(env, values.pop("api_key_env", None))
    base_url = values.get("base_url", DEFAULT_BASE_URL)
    if need_key and not simulate and key.reveal() is None and not _is_loopback(base_url):
        raise ConfigError(f"no API key: set {key_source} in the environment (or use --simulate)")
    fallback = values.pop("fallback_model", ())
    if simulate and "model" not in values:
        values["model"] = SIMULATE_MODEL
    return RunConfig(
        input=input_path,
        output=output,
        api_key=key,
        api_key_env=key_source,
        prices=prices,
        fallback_models=fallback,
        aliases=tuple(sorted(aliases.items())),
        context_windows=tuple(sorted(windows.items())),
        **values,
    )


def _string_table(t: Any, where: str) -> dict[str, str]:
    if not isinstance(t, dict) or not all(isinstance(v, str) and v for v in t.values()):
        raise ConfigError(f"{where} must map names to model names")
    return {str(k): v for k, v in t.items()}


def default_output(input_path: Path) -> Path:
    """`<input stem>.results.jsonl` beside the input."""
    name = input_path.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else input_path.stem
    return input_path.with_name(stem + ".results.jsonl")


def _read_key(env: Mapping[str, str], key_env: str | None) -> tuple[ApiKey, str]:
    """The key and the variable it came from (or the variables tried, for messages)."""
    names = (key_env,) if key_env else KEY_ENVS
    for name in names:
        value = env.get(name)
        if value and value.strip():
            return ApiKey(value.strip()), name
    return ApiKey(None), " or ".join(names)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
