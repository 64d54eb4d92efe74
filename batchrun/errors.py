"""The exception tree. Every error a user can cause carries a one-sentence message.

    BatchrunError                 message, exit_code
    ├── ConfigError               bad option, config file or environment (exit 2)
    ├── InputError                unreadable input file (exit 2); bad *lines* are results instead
    ├── JobError                  resume refused, job locked (exit 2)
    └── RequestError              one HTTP exchange failed; code, status, body
        ├── RetryableError        worth another attempt
        │   ├── RateLimited       429; retry_after from the server if it said
        │   ├── ServerError       408, 409, 5xx
        │   ├── Timeout           no answer within --timeout
        │   ├── ConnectionLost    reset, refused, closed mid-answer
        │   └── BadResponse       200 with an empty or unparsable body
        └── FatalRequestError     the same request will fail again
            ├── AuthError         401/403: the whole job stops (exit 3)
            ├── BadRequest        400, 422 and other 4xx
            ├── ModelNotFound     404
            └── ContextTooLong    the prompt is over the model's window

Whether to retry is an isinstance check on RetryableError.
"""

from __future__ import annotations

from typing import Any


class BatchrunError(Exception):
    """Base of every error batchrun raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BatchrunError):
    """A bad option value, config file or environment variable."""

    exit_code = 2


class InputError(BatchrunError):
    """The input file cannot be read at all."""

    exit_code = 2


class JobError(BatchrunError):
    """The job cannot start: resume refused, or another process holds it."""

    exit_code = 2


class RequestError(BatchrunError):
    """One HTTP exchange failed."""

    code = "request_error"

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


class Timeout(RetryableError):
    """No complete answer within the per-attempt timeout."""

    code = "timeout"


class ConnectionLost(RetryableError):
    """The connection failed or closed before a complete answer."""

    code = "connection_error"


class BadResponse(RetryableError):
    """A 200 whose body is empty or not the expected JSON."""

    code = "bad_response"


class FatalRequestError(RequestError):
    """Retrying the same request cannot help."""


class AuthError(FatalRequestError):
    """HTTP 401/403: the key is wrong; every request would fail."""

    code = "auth_error"


class BadRequest(FatalRequestError):
    """HTTP 400, 422 or another 4xx."""

    code = "bad_request"


class ModelNotFound(FatalRequestError):
    """HTTP 404: the endpoint does not serve this model."""

    code = "model_not_found"


class ContextTooLong(FatalRequestError):
    """The prompt does not fit the model's context window."""

    code = "context_length_exceeded"
