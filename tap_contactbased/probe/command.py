"""`--probe` and `--probe-report FILE` on the tap's own command line.

The flags ride on the SDK's click command, so the probe reads its config exactly as a run
does (`--config` files, `--config ENV`, several merged). `--probe-report` alone also probes:
a forgotten `--probe` must never start a sync, which could create (and bill) exports.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import click
from singer_sdk.exceptions import ConfigValidationError

from tap_contactbased.errors import ContactBasedError
from tap_contactbased.probe import ProbeUnavailable, run_probe
from tap_contactbased.probe.env_config import EnvSettingError, env_config
from tap_contactbased.tap import TapContactBased

REPORT_KEY = "tap_contactbased.probe_report"
EXIT_CANNOT_PROBE = 2


def probe_options() -> list[click.Option]:
    """The probe's options, for the tap's click command."""
    return [
        click.Option(
            ["--probe-report"],
            metavar="FILE",
            is_eager=True,  # read before --probe runs, wherever it stands
            expose_value=False,
            callback=_remember_report,
            help="With --probe (implied): also write the checks as JSON to FILE.",
        ),
        click.Option(
            ["--probe"],
            is_flag=True,
            expose_value=False,
            callback=_probe,
            help=(
                "Check the API against the contract with free requests only (nothing is "
                "created or billed), print one row per contract point and exit: 0 nothing "
                "differs, 1 something differs, 2 the API cannot be reached or refuses the key."
            ),
        ),
    ]


def _remember_report(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[REPORT_KEY] = value


def _probe(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    report = ctx.meta.get(REPORT_KEY)
    if not value and report is None:
        return
    config_input = ctx.params.get("config")
    config = dict(getattr(config_input, "config", None) or {})
    parse_env = bool(getattr(config_input, "parse_env", False))
    ctx.exit(probe(config, parse_env=parse_env, report_path=report))


def probe(config: dict[str, t.Any], *, parse_env: bool, report_path: str | None) -> int:
    """Run the probe, print its table, write its report; return the exit status."""
    try:
        if parse_env:
            config = {**config, **env_config(TapContactBased.config_jsonschema)}
        tap = TapContactBased(config=config, validate_config=True, setup_mapper=False)
    except EnvSettingError as exc:
        return cannot_probe(str(exc), None)
    except ConfigValidationError as exc:
        return cannot_probe(f"invalid settings: {'; '.join(exc.errors)}", tap_key(config))
    try:
        report = run_probe(tap)
    except (ProbeUnavailable, ContactBasedError) as exc:
        return cannot_probe(str(exc), tap_key(tap.config))
    click.echo(report.to_table(), nl=False)
    if report_path is not None:
        try:
            Path(report_path).write_text(report.to_json(), encoding="utf-8")
        except OSError as exc:
            return cannot_probe(f"cannot write {report_path}: {exc.strerror}", None)
    return report.exit_code


def tap_key(config: t.Mapping[str, t.Any]) -> str | None:
    """The configured key, so that a message can be cleared of it."""
    key = config.get("api_key")
    return str(key) if key not in (None, "") else None


def cannot_probe(message: str, key: str | None) -> int:
    """One line on stderr; the probe's exit status for "could not probe"."""
    if key:
        message = message.replace(key, "<api_key>")
    print(f"tap-contactbased: error: probe: {message}", file=sys.stderr)
    return EXIT_CANNOT_PROBE
