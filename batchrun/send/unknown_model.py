"""A model the provider does not serve (a typo in --model) stops the job early instead of
failing every record: a handful of `model_not_found` for one model that has never answered,
with no fallback to take them, is the user's mistake, not the records'."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Protocol

from batchrun.errors import ModelNotFound, RequestError, UnknownModel
from batchrun.route.providers import Target
from batchrun.send.tally import Tally

# How many model_not_found answers, with no success on that model, make it the user's mistake.
HANDFUL = 3


class ModelWatch:
    """Which models have answered, and how often the others were refused as unknown."""

    def __init__(self, handful: int = HANDFUL,
                 note: Callable[[str, Tally, UnknownModel], UnknownModel] | None = None) -> None:
        self.handful = handful
        self.note = note  # counts the stopping record's requests among those no line holds
        self._answered: set[tuple[str | None, str]] = set()
        self._refused: dict[tuple[str | None, str], int] = {}
        self.stopped_on: tuple[str | None, str] | None = None  # the (provider, model) that stopped the job

    def answered(self, provider: str | None, model: str) -> None:
        """The model answered once: from now on a model_not_found is that record's own failure."""
        self._answered.add((provider, model))

    def unproven(self, provider: str | None, model: str) -> bool:
        """No answer from this model yet: a model_not_found may mean the name is wrong."""
        return (provider, model) not in self._answered

    def held(self, name: str, t: Target, err: RequestError, may_fall: bool, tally: Tally | None = None) -> bool:
        """A model_not_found for `t` with no fallback to take the record: True (the record is tried
        again) while the model has never answered; UnknownModel at the handful; else False."""
        if not isinstance(err, ModelNotFound) or may_fall or not self.unproven(t.provider, t.model):
            return False
        try:
            self.refused(name, t.provider, t.model, err.message)
        except UnknownModel as stop:
            raise (self.note(name, tally, stop) if self.note and tally else stop) from None
        return True

    def refused(self, name: str, provider: str | None, model: str, why: str) -> None:
        """Count one model_not_found for a model that never answered; raise UnknownModel (the
        job stops, exit 2, nothing marked failed) at the handful."""
        key = (provider, model)
        n = self._refused[key] = self._refused.get(key, 0) + 1
        if n >= self.handful:
            self.stopped_on = key
            raise UnknownModel(f"the provider does not serve the model {name!r} ({n} requests answered "
                               f"model_not_found, none succeeded: {why})")


class _Lister(Protocol):
    async def list_models(self) -> list[dict[str, object]]: ...


async def served_hint(client: _Lister, model: str) -> str:
    """What the provider's own model list says of a model it refused: the names closest to it, or
    that it lists none (asked only once the job has stopped for it: a job that runs pays nothing)."""
    try:
        names = [str(m.get("id")) for m in await client.list_models() if m.get("id")]
    except RequestError:
        return "; the provider does not list its models (GET /models), so check the name in its documentation"
    close = difflib.get_close_matches(model, names, n=3, cutoff=0.6)
    if close:
        listed = f"{len(names)} models listed at GET /models"
        return "; did you mean " + " or ".join(repr(c) for c in close) + f"? ({listed})"
    return f"; it is not among the {len(names)} models the provider lists at GET /models (`batchrun models`)"
