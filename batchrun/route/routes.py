"""`[route]`: which model a record goes to, by prompt length and by a field of its line.

First match wins: `long` (estimated prompt tokens over `over_tokens`), then `field`'s value in
`models`; else the record's own model, else --model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchrun.errors import ConfigError
from batchrun.records import Record
from batchrun.route.checks import known_table

_ROUTE_KEYS = {"field", "models", "long"}


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """The `[route]` table."""

    field: str | None = None
    models: tuple[tuple[str, str], ...] = ()
    long_over: int | None = None
    long_model: str | None = None

    def shaping(self) -> dict[str, Any]:
        """What the line parser needs to know of this table (`Shaping`'s route fields): a record
        the route sends somewhere needs no model of its own."""
        long = (self.long_over, self.long_model) if self.long_over and self.long_model else None
        return {"route_field": self.field, "route_models": self.models, "route_long": long}

    def models_named(self) -> list[str]:
        """Every model this table may send to."""
        return [m for _, m in self.models] + ([self.long_model] if self.long_model else [])


def parse_route(t: Any, where: str) -> RouteConfig | None:
    """The `[route]` table; ConfigError naming the key for a bad value."""
    if t is None:
        return None
    here = f"{where}: [route]"
    t = known_table(t, here, _ROUTE_KEYS)
    field = t.get("field")
    models = t.get("models", {})
    if field is not None and (not isinstance(field, str) or not field):
        raise ConfigError(f"{here}: field must name a top-level field of the input lines")
    if not isinstance(models, dict) or not all(isinstance(v, str) and v for v in models.values()):
        raise ConfigError(f"{here}: models must map a field's values to model names")
    if models and field is None:
        raise ConfigError(f"{here}: models is set but field is not: name the field to route by")
    long = t.get("long")
    over, long_model = None, None
    if long is not None:
        if not isinstance(long, dict) or set(long) != {"over_tokens", "model"}:
            raise ConfigError(f"{here}: long must be {{ over_tokens = N, model = \"NAME\" }}")
        over, long_model = long["over_tokens"], long["model"]
        if isinstance(over, bool) or not isinstance(over, int) or over < 1:
            raise ConfigError(f"{here}: long.over_tokens must be a whole number of tokens above 0")
        if not isinstance(long_model, str) or not long_model:
            raise ConfigError(f"{here}: long.model must be a model name")
    return RouteConfig(field, tuple(sorted((str(k), v) for k, v in models.items())), over, long_model)


class Router:
    """Decides a record's baseline model and why, from the `[route]` table alone."""

    def __init__(self, config: RouteConfig | None, default_model: str | None) -> None:
        self.config = config or RouteConfig()
        self.default_model = default_model
        self._by_value = dict(self.config.models)
        self.field_seen = 0  # records whose line had the route field

    def route(self, rec: Record) -> tuple[str, str]:
        """(model, reason): reason is route:long, route:FIELD=VALUE, record or default."""
        c = self.config
        value = rec.route_value
        if value is not None:
            self.field_seen += 1
        if c.long_over is not None and c.long_model and rec.est_input_tokens > c.long_over:
            return c.long_model, "route:long"
        if value is not None:
            model = self._by_value.get(value)
            if model is not None:
                return model, f"route:{c.field}={value}"
        if rec.own_model or rec.model != self.default_model:
            return rec.model, "record"
        return rec.model, "default"
