"""`[shadow]`: a share of records is also answered by another model, for comparison only.

Agreement (SPEC): the share of compared records whose answer text is equal after trimming and
case-folding; answers that are JSON are compared as parsed JSON. A record is compared when both
the main and the shadow model answered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from batchrun.errors import ConfigError
from batchrun.route.canary import key_point
from batchrun.route.checks import known_table


@dataclass(frozen=True, slots=True)
class ShadowConfig:
    """The `[shadow]` table."""

    model: str
    share: float

    def picks(self, key: str) -> bool:
        """Is this record also answered by the shadow model? The same on every run."""
        return key_point(key, b"shadow") < self.share


def parse_shadow(t: Any, where: str) -> ShadowConfig | None:
    """The `[shadow]` table; ConfigError naming the key for a bad value."""
    if t is None:
        return None
    here = f"{where}: [shadow]"
    t = known_table(t, here, {"model", "share"})
    model, share = t.get("model"), t.get("share", 1.0)
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{here}: model must name the model to compare with")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
        raise ConfigError(f"{here}: share must be a number from 0 to 1, got {share!r}")
    return ShadowConfig(model, float(share))


def _normal(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return ("json", orjson.loads(stripped))
        except orjson.JSONDecodeError:
            pass
    return ("text", stripped.casefold())


def agree(a: str, b: str) -> bool:
    """Do two answers say the same: equal trimmed and case-folded, or equal as parsed JSON."""
    return bool(_normal(a) == _normal(b))
