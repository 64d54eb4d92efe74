"""RunConfig and where its values come from: flags > environment > batchrun.toml > defaults.

Every `process` option may be set in batchrun.toml (top level or a `[process]` table, dashes or
underscores alike) and in the environment as BATCHRUN_<NAME>. A bad value anywhere is one
sentence naming the option and its source, raised as ConfigError before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batchrun.account.prices import Price, parse_windows, user_prices
from batchrun.account.pricing import PriceBook
from batchrun.errors import ConfigError
from batchrun.input.lines import DEFAULT_MAX_LINE_BYTES
from batchrun.input.shapes import LineParser, Shaping
from batchrun.input.tokens import DEFAULT_MAX_OUTPUT_TOKENS
from batchrun.option_values import NOT_FROM_ENV, OPTIONS, check_text, is_loopback
from batchrun.route.providers import check_keys
from batchrun.route.tables import Routing, parse_routing
from batchrun.route.when import DEFAULT_MARGIN, Margin, When
from batchrun.secret import ApiKey, redact_text, redact_url
from batchrun.send.notify import NotifyConfig, parse_notify
from batchrun.send.retry import DEFAULT_MAX_ATTEMPTS

if TYPE_CHECKING:
    from batchrun.input.parts import Part

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CONFIG = "batchrun.toml"
KEY_ENVS = ("BATCHRUN_API_KEY", "OPENAI_API_KEY")
# --simulate with no --model: a model the simulator serves and the price snapshot knows.
SIMULATE_MODEL = "gpt-4o-mini"
# A simulated job's base URL in its identity (and checkpoint): `report` reads it to mark the page.
SIMULATED_BASE_URL = "simulator"
SIMULATE_EMBEDDING_MODEL = "text-embedding-3-small"
# Options that do something once rather than set how a job runs: flags only.
ACTIONS = ("fresh", "retry_failed")
# The tables batchrun.toml may hold; any other is a typo, refused rather than ignored.
TABLES = ("process", "prices", "aliases", "context_windows", "providers", "route", "canary", "shadow", "notify")


@dataclass(frozen=True)
class RunConfig:
    """Everything one `process` run needs, validated."""
    input: Path
    output: Path
    model: str | None = None
    model_field: str | None = None  # the plain records' field that picks the model (else `model` is data)
    base_url: str = DEFAULT_BASE_URL
    api_key: ApiKey = field(default_factory=lambda: ApiKey(None))
    api_key_env: str = " or ".join(KEY_ENVS)  # where the key was read from, for messages
    concurrency: int = 16
    rpm: float | None = None
    tpm: float | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = 120.0  # the longest wait for the next byte of an answer
    max_request_time: float = 1800.0  # one attempt at most (DeepSeek closes a queued request at 30 min)
    max_wait: float | None = None  # the longest retry-after a record waits out before the job stops
    retry_base: float = 0.5
    max_cost: float | None = None
    prices: dict[str, Price] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    endpoint: str = "chat"  # where plain records and chat bodies are sent
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
    batch_api: bool = False  # through the provider's /v1/files + /v1/batches instead of live requests
    batch_size: int = 50_000
    batch_expired: str = "resubmit"  # unanswered lines of an expired batch: a new batch, or "live"
    no_wait: bool = False  # --batch-api: submit and collect what is done, exit 75 while batches run
    batch_queue_tokens: int | None = None  # --batch-api: each model's enqueued-token limit (None: learned)
    routing: Routing = field(default_factory=Routing)
    deadline: When | None = None  # --deadline: plan across the Batch API and live (job/batch_api/deadline.py)
    deadline_margin: Margin = DEFAULT_MARGIN
    shared_limits: str | None = None  # a Redis URL: the key's limit shared with other processes
    shared_limits_required: bool = False  # Redis down: stop (exit 75) instead of going on alone
    part: Part | None = None  # --part K/N (or --parts N and the scheduler's index): these lines only
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # --notify and [notify]: not the job's identity
    chunk_long: bool = False  # a plain record over chunk_share of its model's window goes in pieces
    chunk_share: float = 0.8

    def parser(self) -> LineParser:
        """The line parser these options shape requests with."""
        return LineParser(
            Shaping(self.model, self.template, self.system, self.max_tokens, self.default_max_output, self.aliases,
                    endpoint=self.endpoint, model_field=self.model_field,
                    **(self.routing.route.shaping() if self.routing.route else {})),
            self.max_line_bytes,
        )

    def price_book(self) -> PriceBook:
        """Prices for this job: the user's, then the snapshot matched by each provider's URL."""
        return PriceBook(self.prices, None if self.simulate else self.base_url,
                         context_windows=dict(self.context_windows),
                         provider_urls={p.name: p.base_url for p in self.routing.providers})

    def models_named(self) -> list[str]:
        """Every model the options and tables name (records may name more)."""
        return [m for m in (self.model, *self.fallback_models, *self.routing.models_named()) if m]

    def identity(self) -> dict[str, Any]:
        """The request-shaping options: changing one makes it another job."""
        return {
            "model": self.model,
            "template": self.template,
            "system": self.system,
            "base_url": SIMULATED_BASE_URL if self.simulate else redact_url(self.base_url),
            "prices": sorted(
                [n, str(p.input.base), str(p.output.base) if p.output else None,
                 str(p.cached_input.base) if p.cached_input else None]
                for n, p in self.prices.items()
            ),
            "max_tokens": self.max_tokens,
            "aliases": [list(a) for a in self.aliases],
            **self.routing.identity(),
            # chat, the default, is left out: a job begun before --endpoint existed resumes
            **({"endpoint": self.endpoint} if self.endpoint != "chat" else {}),
            **({"part": str(self.part)} if self.part else {}),
            **({"model_field": self.model_field} if self.model_field else {}),
        }


def read_config_file(path: Path | None) -> tuple[dict[str, Any], str]:
    """The config file's table and its name for messages; {} when there is none."""
    explicit = path is not None
    path = path or Path(DEFAULT_CONFIG)
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}, str(path)
    import tomllib  # only when there is a file to read: most runs have none
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
    values = _option_values(flags, env, _file_options(doc, doc_name), doc_name)
    prices = user_prices(doc, values.pop("prices", None), doc_name)
    aliases = _string_table(doc.get("aliases", {}), f"config file {doc_name}: [aliases]")
    windows = parse_windows(doc.get("context_windows", {}), f"config file {doc_name}")
    check_text(values)
    routing = parse_routing(doc, env, f"config file {doc_name}")
    input_path: Path = flags.get("input") or Path("-")
    values["part"] = part = values.pop("part", None)
    if (parts := values.pop("parts", None)) or part is not None:  # input.parts loads only for a job in parts
        from batchrun.input.parts import part_of
        values["part"] = part_of(part, parts, env)
    if values["part"] and values.get("batch_api"):  # a batch job shards the whole file itself
        raise ConfigError("--part and --parts are for live requests: --batch-api splits the whole file into batches")
    output = values.pop("output", None) or default_output(input_path, values.get("part"))
    simulate = values.get("simulate", False)
    key, key_source = _read_key(env, values.pop("api_key_env", None))
    base_url = values.get("base_url", DEFAULT_BASE_URL)
    if need_key and not simulate and key.reveal() is None and not is_loopback(base_url) and (
            routing.uses_default(
            [m for m in (values.get("model"), *values.get("fallback_model", ()), *routing.models_named()) if m])):
        raise ConfigError(f"no API key: set {key_source} in the environment (or use --simulate)")
    if key.reveal() is not None and urlsplit(base_url).password is not None and not simulate:
        raise ConfigError(f"--base-url {redact_url(base_url)} carries a password and {key_source} a key: "
                          "only one can be the Authorization header; unset the key to use the URL's")
    fallback = values.pop("fallback_model", ())
    if values.get("system") and values.get("endpoint") in ("embeddings", "completions"):
        raise ConfigError(f"--system cannot shape {values['endpoint']} requests: they take one text and no "
                          "system message (put it in --template instead)")
    if simulate and "model" not in values:
        values["model"] = SIMULATE_EMBEDDING_MODEL if values.get("endpoint") == "embeddings" else SIMULATE_MODEL
    cfg = RunConfig(
        input=input_path, output=output, api_key=key, api_key_env=key_source, prices=prices,
        fallback_models=fallback, aliases=tuple(sorted(aliases.items())),
        context_windows=tuple(sorted(windows.items())), routing=routing,
        notify=parse_notify(doc.get("notify"), flags.get("notify") or env.get("BATCHRUN_NOTIFY_URL"), doc_name),
        **values,
    )
    if need_key:
        check_keys(cfg.routing.providers, cfg.models_named(), f"config file {doc_name}", is_loopback)
    return cfg


def _file_options(doc: dict[str, Any], doc_name: str) -> dict[str, Any]:
    """The config file's option values: top level and `[process]`, dashes or underscores alike."""
    for name in TABLES:
        if name in doc and not isinstance(doc[name], dict):
            raise ConfigError(f"config file {doc_name}: [{name}] must be a table (written [{name}], "
                              f"not [[{name}]] or {name} = ...)")
    tables = sorted(k for k, v in doc.items() if isinstance(v, dict) and k not in TABLES)
    if tables:
        raise ConfigError(f"config file {doc_name}: unknown table [{tables[0]}] (expected one of "
                          f"{', '.join('[' + t + ']' for t in TABLES)})")
    file_opts = _norm({k: v for k, v in doc.items() if not isinstance(v, dict)})
    if isinstance(doc.get("process"), dict):
        file_opts.update(_norm(doc["process"]))
    unknown = sorted(set(file_opts) - set(OPTIONS) - {"fallback_models"})
    if unknown:
        raise ConfigError(f"config file {doc_name}: unknown option {unknown[0]!r}")
    for action in ACTIONS:
        if action in file_opts:  # as a setting, every cron run would start over and pay again
            flag = "--" + action.replace("_", "-")
            raise ConfigError(f"config file {doc_name}: {action} is an action, not a setting: pass {flag} "
                              "on the command line for the one run that needs it")
    if "fallback_models" in file_opts:
        file_opts["fallback_model"] = file_opts.pop("fallback_models")
    return file_opts


def _option_values(
    flags: Mapping[str, Any], env: Mapping[str, str], file_opts: dict[str, Any], doc_name: str
) -> dict[str, Any]:
    """Each option's parsed value from the first source that sets it: flag, env, file."""
    for action in ACTIONS:
        name = f"BATCHRUN_{action.upper()}"
        if name in env:
            raise ConfigError(f"environment {name}: {action} is an action, not a setting: pass "
                              f"--{action.replace('_', '-')} on the command line instead")
    values: dict[str, Any] = {}
    for name, (parse, good) in OPTIONS.items():
        raw, source = None, None
        flag = flags.get(name)
        if flag is not None and flag != () and flag is not False:
            raw, source = flag, f"--{name.replace('_', '-')}"
        elif name not in NOT_FROM_ENV and f"BATCHRUN_{name.upper()}" in env:
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
            # a value that is no variable name may be a key typed in its place: never echo it
            # (and a URL's password is masked: --shared-limits redis://:PASSWORD@...)
            shown = "a value that is not shown" if name == "api_key_env" else redact_text(repr(raw))
            raise ConfigError(f"invalid {name.replace('_', '-')} from {source}: expected {good}, "
                              f"got {shown}") from None
    return values


def _string_table(t: Any, where: str) -> dict[str, str]:
    if not isinstance(t, dict) or not all(isinstance(v, str) and v for v in t.values()):
        raise ConfigError(f"{where} must map names to model names")
    return {str(k): v for k, v in t.items()}


def default_output(input_path: Path, part: Part | None = None) -> Path:
    """`<input stem>.results.jsonl` beside the input (`<stem>.part-K-of-N.results.jsonl` for a part)."""
    name = input_path.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else input_path.stem
    if part is None:
        return input_path.with_name(stem + ".results.jsonl")
    from batchrun.input.parts import part_output_name
    return input_path.with_name(part_output_name(stem, part))


def _read_key(env: Mapping[str, str], key_env: str | None) -> tuple[ApiKey, str]:
    """The key and the variable it came from (or the variables tried, for messages)."""
    names = (key_env,) if key_env else KEY_ENVS
    for name in names:
        value = env.get(name)
        if value and value.strip():
            return ApiKey(value.strip()), name
    return ApiKey(None), " or ".join(names)
