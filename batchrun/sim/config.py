"""How the simulator behaves: one frozen SimConfig, and the check that its values make sense."""

from __future__ import annotations

from dataclasses import dataclass, field

from batchrun.errors import ConfigError

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4.1-mini", "deepseek-chat", "sim-small", "text-embedding-3-small")
WINDOWS = ("bucket", "fixed", "minute")
RETRY_AFTER_MODES = ("both", "seconds", "ms", "none")
ERROR_KINDS = ("500", "503", "429", "reset", "bad_body", "html", "timeout")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How the simulator behaves."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_kinds: tuple[str, ...] = ("500", "429", "reset", "bad_body")
    fail_first: int = 0  # every distinct prompt fails its first N attempts
    fail_kinds: tuple[str, ...] = ("429", "500", "reset", "bad_body")
    hang_s: float = 30.0  # how long a "timeout" failure keeps the client waiting
    rpm: int | None = None
    tpm: int | None = None
    headers: bool = True  # the x-ratelimit-* headers on every answer (retry-after is separate)
    # bucket: OpenAI's per-second quantization; fixed: Azure's windows of window_s seconds from
    # the server's start; minute: a gateway's calendar minute (LiteLLM's counters).
    window: str = "bucket"
    window_s: float = 10.0  # length of a "fixed" window
    burst_s: float = 1.0  # a "bucket" holds this many seconds of the limit
    retry_after: str = "both"  # on a 429: both, seconds (retry-after), ms (retry-after-ms), none
    queue_over: int | None = None  # DeepSeek: past this many answered at once, hold with keep-alives
    keepalive_s: float = 0.5  # how often a held request gets an empty line
    quota: int | None = None  # after this many billed answers, 429 insufficient_quota
    api_key: str | None = None  # when set, any other key gets 401
    models: tuple[str, ...] = DEFAULT_MODELS
    strict_models: bool = False  # unknown model -> 404
    context_window: int | None = None
    context_windows: dict[str, int] = field(default_factory=dict)  # per model, over the global one
    failing_models: tuple[str, ...] = ()  # these always answer 503
    differ_share: float = 0.0  # this share of prompts gets another answer (sim/variants.py)
    seed: int = 0
    # Batch API: seconds a batch spends in each of validating, in_progress and finalizing; the
    # share of a batch's lines left unanswered so that the batch ends expired (chosen by a hash
    # of custom_id; a line expires only the first time it is sent); fail_batch_validation rejects every
    # batch at validation, each line with its own error.
    batch_step_s: float = 0.2
    batch_expire_share: float = 0.0
    fail_batch_validation: bool = False
    batch_lines_per_s: float | None = None  # the provider's capacity: lines a second across all batches
    # The enqueued-token limit (OpenAI's "batch queue limit"): the prompt tokens each model may
    # hold in batches not yet finished; a batch past it fails validation with token_limit_exceeded.
    batch_queue_tokens: int | None = None
    batch_queue_models: dict[str, int] = field(default_factory=dict)  # per model, over the global one
    # Batches created per batch_hour_s (OpenAI: 2,000 an hour); past it POST /batches is a 429.
    batches_per_hour: int | None = None
    batch_hour_s: float = 3600.0
    # Flex processing (sim/flex.py): offered when flex_latency_ms is set; that share is refused.
    flex_latency_ms: float | None = None
    flex_unavailable_share: float = 0.0


def check_config(c: SimConfig) -> None:
    """Raise ConfigError, one sentence naming the mock-server flag, for a value that makes no sense."""
    if c.window not in WINDOWS:
        raise ConfigError(f"--window {c.window!r}: expected bucket, fixed or minute")
    if c.retry_after not in RETRY_AFTER_MODES:
        raise ConfigError(f"--retry-after {c.retry_after!r}: expected both, seconds, ms or none")
    if not 0.0 <= c.error_rate <= 1.0:
        raise ConfigError(f"--error-rate {c.error_rate}: expected a share from 0 to 1")
    if not 0.0 <= c.differ_share <= 1.0:
        raise ConfigError(f"--differ-share {c.differ_share}: expected a share from 0 to 1")
    bad = [k for k in c.error_kinds if k not in ERROR_KINDS]
    if bad or not c.error_kinds:
        raise ConfigError(f"--error-kinds {','.join(c.error_kinds)!r}: expected some of {', '.join(ERROR_KINDS)}")
    positive = {"--window-s": c.window_s, "--burst-s": c.burst_s, "--keepalive-s": c.keepalive_s,
                "--batch-hour-s": c.batch_hour_s}
    for flag, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{flag} {value}: expected a number of seconds above 0")
    counts = {"--rpm": c.rpm, "--tpm": c.tpm, "--queue-over": c.queue_over,
              "--batch-queue-tokens": c.batch_queue_tokens, "--batches-per-hour": c.batches_per_hour,
              **{f"--batch-queue-model {m}": n for m, n in c.batch_queue_models.items()}}
    for flag, count in counts.items():
        if count is not None and count < 1:
            raise ConfigError(f"{flag} {count}: expected a whole number of at least 1")
    if c.quota is not None and c.quota < 0:
        raise ConfigError(f"--quota {c.quota}: expected a number of answers, 0 or more")
    if not 0.0 <= c.flex_unavailable_share <= 1.0 or (c.flex_latency_ms or 0.0) < 0:
        raise ConfigError("--flex-unavailable-share: expected a share from 0 to 1; --flex-latency-ms: 0 or more")
    if not 0.0 <= c.batch_expire_share <= 1.0:
        raise ConfigError(f"--batch-expire-share {c.batch_expire_share}: expected a share from 0 to 1")
    if c.batch_lines_per_s is not None and not c.batch_lines_per_s > 0:
        raise ConfigError(f"--batch-lines-per-s {c.batch_lines_per_s}: expected a number of lines above 0")
    if c.batch_step_s < 0:
        raise ConfigError(f"--batch-step-s {c.batch_step_s}: expected a number of seconds, 0 or more")
    if c.latency_ms < 0 or c.jitter_ms < 0:
        raise ConfigError("--latency-ms and --jitter-ms: expected milliseconds, 0 or more")
