"""Settings from `TAP_CONTACTBASED_*` variables, typed by the config schema.

Meltano hands a plugin command (`meltano invoke tap-contactbased:probe`) its settings only as
such variables (`--config ENV`); the SDK's own reader leaves `number` settings as text, which
then fail validation.
"""

from __future__ import annotations

import json
import os
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "TAP_CONTACTBASED_"
TRUTHY = frozenset({"true", "t", "1", "yes", "y", "on"})


class EnvSettingError(ValueError):
    """A variable whose text is not a value of its setting's type."""


def variable(name: str) -> str:
    """The variable that holds a setting."""
    return PREFIX + name.upper().replace("-", "_")


def env_config(
    schema: Mapping[str, t.Any], environ: Mapping[str, str] | None = None
) -> dict[str, t.Any]:
    """Every setting of `schema` that has a variable, typed."""
    environ = os.environ if environ is None else environ
    config: dict[str, t.Any] = {}
    for name, spec in schema.get("properties", {}).items():
        raw = environ.get(variable(name))
        if raw is not None:
            config[name] = typed(name, spec, raw)
    return config


def typed(name: str, spec: Mapping[str, t.Any], raw: str) -> t.Any:
    """The value a variable's text stands for, by the setting's JSON schema type."""
    types = spec.get("type", "string")
    kinds = [k for k in ([types] if isinstance(types, str) else types) if k != "null"]
    kind = kinds[0] if kinds else "string"
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            number = float(raw)
            return int(number) if number.is_integer() else number
        if kind == "boolean":
            return raw.strip().lower() in TRUTHY
        if kind in ("array", "object"):
            try:
                return json.loads(raw)
            except ValueError:
                if kind == "object":
                    raise
                return [part.strip() for part in raw.split(",") if part.strip()]  # "a,b" as the SDK
    except ValueError:
        msg = f"{variable(name)} is not a valid {kind}: set it to a JSON {kind} or unset it."
        raise EnvSettingError(msg) from None
    return raw
