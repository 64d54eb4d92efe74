"""The routing tables of batchrun.toml together: `[providers]`, `[route]`, `[canary]`, `[shadow]`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchrun.errors import ConfigError
from batchrun.route.providers import Provider, describe, parse_providers
from batchrun.route.routes import RouteConfig, parse_route

if TYPE_CHECKING:  # [canary] and [shadow] load only for a config that has them
    from batchrun.route.canary import CanaryConfig
    from batchrun.route.shadow import ShadowConfig


@dataclass(frozen=True, slots=True)
class Routing:
    """Where records may go besides the default endpoint and --model."""

    providers: tuple[Provider, ...] = ()
    route: RouteConfig | None = None
    canary: CanaryConfig | None = None
    shadow: ShadowConfig | None = None

    @property
    def configured(self) -> bool:
        """Anything is configured: records are then planned one by one."""
        return bool(self.providers or self.route or self.canary or self.shadow)

    def models_named(self) -> list[str]:
        """Every model the tables name."""
        named = list(self.route.models_named()) if self.route else []
        return named + [c.model for c in (self.canary, self.shadow) if c is not None]

    def uses_default(self, named: list[str]) -> bool:
        """Does a model the job names go to the default endpoint (so its key is needed up
        front)? With providers configured and every named model on one, it does not."""
        names = {p.name for p in self.providers}
        return not names or not named or any(m.partition("/")[0] not in names for m in named)

    def identity(self) -> dict[str, Any]:
        """Where records go is request shaping; empty when nothing is configured, so jobs from
        before providers existed keep their identity. Shares and thresholds may change."""
        if not self.configured:
            return {}
        return {
            "providers": [describe(p) for p in self.providers],
            "route": repr(self.route) if self.route else None,
            "canary": self.canary.model if self.canary else None,
            "shadow": self.shadow.model if self.shadow else None,
        }


def parse_routing(doc: Mapping[str, Any], env: Mapping[str, str], where: str) -> Routing:
    """The four tables of a config document; ConfigError naming the table and key."""
    routing = Routing(
        parse_providers(doc.get("providers"), env, where),
        parse_route(doc.get("route"), where),
        _canary(doc.get("canary"), where),
        _shadow(doc.get("shadow"), where),
    )
    _check_provider_names(routing, where)
    return routing


def _canary(t: Any, where: str) -> CanaryConfig | None:
    if t is None:
        return None
    from batchrun.route.canary import parse_canary

    return parse_canary(t, where)


def _shadow(t: Any, where: str) -> ShadowConfig | None:
    if t is None:
        return None
    from batchrun.route.shadow import parse_shadow

    return parse_shadow(t, where)


def _check_provider_names(r: Routing, where: str) -> None:
    """With providers configured, a table naming `NAME/model` for a NAME that is not one is a
    typo (`deepsek/deepseek-chat`), refused rather than sent whole to the default endpoint."""
    names = {p.name for p in r.providers}
    if not names:
        return
    named = [("route", k, m) for k, m in (r.route.models if r.route else ())]
    if r.route and r.route.long_model:
        named.append(("route", "long", r.route.long_model))
    named += [(t, "model", c.model) for t, c in (("canary", r.canary), ("shadow", r.shadow)) if c is not None]
    for table, key, model in named:
        prefix, sep, _ = model.partition("/")
        if sep and prefix not in names:
            raise ConfigError(f"{where}: [{table}] {key}: {model!r} names no configured provider {prefix!r} "
                              f"(configured: {', '.join(sorted(names))})")
