"""A model the provider does not serve (a typo in --model) stops the job early instead of
failing every record: a handful of `model_not_found` for one model that has never answered,
with no fallback to take them, is the user's mistake, not the records'."""

from __future__ import annotations

from batchrun.errors import ModelNotFound, RequestError, UnknownModel
from batchrun.route.providers import Target

# How many model_not_found answers, with no success on that model, make it the user's mistake.
HANDFUL = 3


class ModelWatch:
    """Which models have answered, and how often the others were refused as unknown."""

    def __init__(self, handful: int = HANDFUL) -> None:
        self.handful = handful
        self._answered: set[tuple[str | None, str]] = set()
        self._refused: dict[tuple[str | None, str], int] = {}

    def answered(self, provider: str | None, model: str) -> None:
        """The model answered once: from now on a model_not_found is that record's own failure."""
        self._answered.add((provider, model))

    def unproven(self, provider: str | None, model: str) -> bool:
        """No answer from this model yet: a model_not_found may mean the name is wrong."""
        return (provider, model) not in self._answered

    def held(self, name: str, t: Target, err: RequestError, may_fall: bool) -> bool:
        """A model_not_found for `t` with no fallback to take the record: True (the record is tried
        again) while the model has never answered; UnknownModel at the handful; else False."""
        if not isinstance(err, ModelNotFound) or may_fall or not self.unproven(t.provider, t.model):
            return False
        self.refused(name, t.provider, t.model, err.message)
        return True

    def refused(self, name: str, provider: str | None, model: str, why: str) -> None:
        """Count one model_not_found for a model that never answered; raise UnknownModel (the
        job stops, exit 2, nothing marked failed) at the handful."""
        key = (provider, model)
        n = self._refused[key] = self._refused.get(key, 0) + 1
        if n >= self.handful:
            raise UnknownModel(f"the provider does not serve the model {name!r} ({n} requests answered "
                               f"model_not_found, none succeeded: {why})")
