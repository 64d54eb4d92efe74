"""The exception tree, the exit codes and why a run stopped. Every error a user can cause
carries a one-sentence message; the CLI turns it into that sentence and its ExitCode, once.

    BatchrunError                 message, exit_code
    ├── ConfigError               bad option, config file or environment (exit 2)
    ├── InputError                unreadable input file (exit 2); bad *lines* are results instead
    ├── JobError                  resume refused (exit 2)
    ├── JobBusy                   another process holds the job's lock (exit 75)
    ├── BudgetReached             the next request would cross --max-cost: the job stops (exit 3)
    ├── WaitTooLong               a 429 asks to wait longer than --max-wait: the job stops (exit 75)
    ├── ProviderDown              every recent attempt failed, no fallback left: the job stops (exit 75)
    ├── UnknownModel              a handful of model_not_found, never an answer: the job stops (exit 2)
    ├── WriteFailed               the output or checkpoint cannot be written: the job stops (exit 74)
    ├── NotSent                   a clean stop came while a record still waited for its first send
    └── RequestError              one HTTP exchange failed; code, status, body
        ├── RetryableError        worth another attempt
        │   ├── RateLimited       429; retry_after from the server if it said; never fails a record
        │   ├── ServerError       408, 409, 5xx
        │   ├── CircuitOpen       not sent: the provider's circuit is open; down the fallback chain
        │   ├── Timeout           no answer within --timeout
        │   ├── ConnectionLost    reset, refused, closed mid-answer
        │   ├── BadResponse       a malformed HTTP answer
        │   └── UnreadableAnswer  a 200 that is not an answer: retried, counted as possibly billed
        └── FatalRequestError     the same request will fail again
            ├── AuthError         401/403: the whole job stops (exit 3)
            ├── QuotaExhausted    429 insufficient_quota: out of credit; the job stops (exit 3)
            ├── BadRequest        400, 422 and other 4xx
            ├── ModelNotFound     404
            └── ContextTooLong    the prompt is over the model's window

Whether to retry is an isinstance check on RetryableError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any


class ExitCode(IntEnum):
    """What the process tells its caller (the README's table)."""

    OK = 0  # job complete, every record succeeded
    SOME_FAILED = 1  # job complete, some records failed or were invalid
    USAGE = 2  # usage, config or input-file error: nothing was sent
    STOPPED = 3  # budget cap, key refused or out of quota: resumable
    CANT_WRITE = 74  # output, checkpoint or log not writable: resumable once fixed
    TRY_LATER = 75  # provider down or asking to wait too long: resumable
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


class StopReason(StrEnum):
    """Why a run stopped before reading its whole input."""

    INTERRUPTED = "interrupted"
    TERMINATED = "terminated"
    HANGUP = "hangup"  # the terminal went away (an ssh session closed)
    BUDGET = "budget"
    AUTH = "auth"
    QUOTA = "quota"  # the account is out of credit
    WAIT = "wait"  # the server asked to wait longer than --max-wait
    UNAVAILABLE = "unavailable"  # the provider does not answer: connection errors, timeouts, 5xx
    WRITE_FAILED = "write_failed"  # the output or checkpoint could not be written
    UNKNOWN_MODEL = "unknown_model"  # the provider does not serve the model (a typo): the user's mistake
    BATCHES_RUNNING = "batches_running"  # --batch-api --no-wait: provider batches are still running

    @property
    def exit_code(self) -> ExitCode:
        """The exit code of a run that stopped for this reason."""
        return _EXIT_BY_STOP[self]


_EXIT_BY_STOP = {
    StopReason.INTERRUPTED: ExitCode.INTERRUPTED,
    StopReason.TERMINATED: ExitCode.TERMINATED,
    StopReason.HANGUP: ExitCode.HANGUP,
    StopReason.BUDGET: ExitCode.STOPPED,
    StopReason.AUTH: ExitCode.STOPPED,
    StopReason.QUOTA: ExitCode.STOPPED,
    StopReason.WAIT: ExitCode.TRY_LATER,
    StopReason.UNAVAILABLE: ExitCode.TRY_LATER,
    StopReason.WRITE_FAILED: ExitCode.CANT_WRITE,
    StopReason.UNKNOWN_MODEL: ExitCode.USAGE,
    StopReason.BATCHES_RUNNING: ExitCode.TRY_LATER,
}


def run_exit_code(stopped: StopReason | None, all_ok: bool) -> ExitCode:
    """The exit code of a `process` run: its stop reason, else whether every record succeeded."""
    if stopped is not None:
        return stopped.exit_code
    return ExitCode.OK if all_ok else ExitCode.SOME_FAILED


class BatchrunError(Exception):
    """Base of every error batchrun raises on purpose."""

    exit_code = ExitCode.SOME_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BatchrunError):
    """A bad option value, config file or environment variable."""

    exit_code = ExitCode.USAGE


class InputError(BatchrunError):
    """The input file cannot be read at all."""

    exit_code = ExitCode.USAGE


@contextmanager
def reading(what: str, path: Path | str) -> Iterator[None]:
    """The one place an OSError while reading a user's file becomes an InputError sentence."""
    try:
        yield
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None


class JobError(BatchrunError):
    """The job cannot start: resume refused, or another process holds it."""

    exit_code = ExitCode.USAGE


class JobBusy(BatchrunError):
    """Another process holds the job's lock: busy, not broken; run again later (exit 75)."""

    exit_code = ExitCode.TRY_LATER


class BudgetReached(BatchrunError):
    """The next request's worst-case cost would cross --max-cost."""

    exit_code = ExitCode.STOPPED


class WaitTooLong(BatchrunError):
    """The server asks to wait longer than --max-wait: the job stops, to be run again later."""

    exit_code = ExitCode.TRY_LATER


class ProviderDown(BatchrunError):
    """Every recent attempt at the provider failed (connection, timeout, 5xx) and no fallback is
    left: the job stops, to be run again later."""

    exit_code = ExitCode.TRY_LATER


class UnknownModel(BatchrunError):
    """A handful of requests to one model were answered model_not_found and none succeeded, with
    no fallback to take them: the model name is wrong. The job stops; no record is marked failed."""

    exit_code = ExitCode.USAGE


class WriteFailed(BatchrunError):
    """The output, checkpoint or log could not be written (disk full, permissions)."""

    exit_code = ExitCode.CANT_WRITE


class NotSent(BatchrunError):
    """A clean stop came while the record was still waiting for its first send: the next run
    sends it."""


class RequestError(BatchrunError):
    """One HTTP exchange failed."""

    code = "request_error"
    possibly_billed = 0  # 1 for an attempt the server may have billed without an answer to keep

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        headers: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers = headers


class RetryableError(RequestError):
    """The same request may succeed later."""


class RateLimited(RetryableError):
    """HTTP 429."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(RetryableError):
    """HTTP 408, 409 or 5xx."""

    code = "server_error"


class CircuitOpen(RetryableError):
    """Not sent: the provider's circuit breaker is open, so the record goes down its fallback chain."""

    code = "provider_down"


class Timeout(RetryableError):
    """No complete answer within the per-attempt timeout."""

    code = "timeout"


class ConnectionLost(RetryableError):
    """The connection failed or closed before a complete answer."""

    code = "connection_error"


class BadResponse(RetryableError):
    """A malformed HTTP answer, or a list that is not in the expected shape."""

    code = "bad_response"


class FatalRequestError(RequestError):
    """Retrying the same request cannot help."""


class AuthError(FatalRequestError):
    """HTTP 401/403: the key is wrong; every request would fail."""

    code = "auth_error"


class QuotaExhausted(FatalRequestError):
    """A 429 whose code is `insufficient_quota`: the account is out of credit, not rate limited;
    every request would fail the same way (the whole job stops, exit 3)."""

    code = "insufficient_quota"


class UnreadableAnswer(RetryableError):
    """A 200 whose body is not an answer (a proxy's HTML page, truncated JSON, an `error`
    object): retried like a 5xx, since no answer came back to keep; the attempt may have been
    billed, so it is counted as such in the summary."""

    possibly_billed = 1

    code = "bad_response"


class BadRequest(FatalRequestError):
    """HTTP 400, 422 or another 4xx."""

    code = "bad_request"


class ModelNotFound(FatalRequestError):
    """HTTP 404: the endpoint does not serve this model."""

    code = "model_not_found"


class ContextTooLong(FatalRequestError):
    """The prompt does not fit the model's context window."""

    code = "context_length_exceeded"
