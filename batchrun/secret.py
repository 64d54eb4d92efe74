"""Secrets, redacted at the edge: the API key, whose repr cannot leak it, and credentials in a
base URL, masked wherever a URL or a command line is shown or stored."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


class ApiKey:
    """The API key. Its repr and str hide it, so it cannot leak through a log or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        """The key itself, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(<redacted>)" if self._value else "ApiKey(None)"

    __str__ = __repr__



def redact_url(url: str) -> str:
    """The URL with any password in it masked: `http://user:***@host/v1`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


_URL_WITH_PASSWORD = re.compile(r"(\w+://[^/\s:@]*:)[^@\s/]+@")


def redact_text(text: str, key: ApiKey | None = None) -> str:
    """Text (a command line, a message) with URL passwords and the key masked."""
    text = _URL_WITH_PASSWORD.sub(r"\1***@", text)
    secret = key.reveal() if key is not None else None
    return text.replace(secret, "<redacted>") if secret else text
