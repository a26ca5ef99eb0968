"""The probe as a command: run it, print its table, write its report, give the exit status.

`cli.py` puts `--probe` and `--probe-report FILE` on the tap's command line and reads the
config there exactly as a run does; this module needs only the settings and the key. Meltano
hands a plugin command (`meltano invoke tap-contactbased:probe`) its settings only as
`TAP_CONTACTBASED_*` variables (`--config ENV`); `env_config` types them by the config schema,
as the SDK's own reader leaves `number` settings as text, which then fail validation.
"""

from __future__ import annotations

import json
import os
import sys
import typing as t

from tap_contactbased.errors import ContactBasedError
from tap_contactbased.probe import ProbeUnavailable, run_probe
from tap_contactbased.redaction import clean

if t.TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from tap_contactbased.settings import Settings

EXIT_CANNOT_PROBE = 2
PREFIX = "TAP_CONTACTBASED_"
TRUTHY = frozenset({"true", "t", "1", "yes", "y", "on"})


def probe(settings: Settings, api_key: str, report_path: Path | None) -> int:
    """Run the probe, print its table, write its report; return the exit status."""
    try:
        report = run_probe(settings, api_key)
    except (ProbeUnavailable, ContactBasedError) as exc:
        return cannot_probe(str(exc))
    sys.stdout.write(report.to_table())
    sys.stdout.flush()
    if report_path is not None:
        try:  # a file only its owner can read (0600), an existing one included
            fd = os.open(report_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                os.fchmod(file.fileno(), 0o600)
                file.write(report.to_json())
        except OSError as exc:
            return cannot_probe(f"cannot write {report_path}: {exc.strerror}")
    return report.exit_code


def cannot_probe(message: str) -> int:
    """One line on stderr, redacted; the probe's exit status for "could not probe"."""
    print(f"tap-contactbased: error: probe: {clean(message)}", file=sys.stderr)
    return EXIT_CANNOT_PROBE


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
