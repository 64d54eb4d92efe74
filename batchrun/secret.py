"""The API key, kept where its repr cannot leak it."""

from __future__ import annotations


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

