"""`--probe` and `--probe-report FILE` on the tap's own command line.

The flags ride on the SDK's click command, so the probe reads its config exactly as a run
does (`--config` files, `--config ENV`, several merged). `--probe-report` alone also probes:
a forgotten `--probe` must never start a sync, which could create (and bill) exports.
"""

from __future__ import annotations

import os
import sys
import typing as t
from pathlib import Path

import click
from singer_sdk.exceptions import ConfigValidationError

from tap_contactbased.errors import ContactBasedError
from tap_contactbased.probe import ProbeUnavailable, run_probe
from tap_contactbased.probe.env_config import EnvSettingError, env_config
from tap_contactbased.redaction import clean
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
    except (EnvSettingError, ContactBasedError) as exc:
        return cannot_probe(str(exc))
    except ConfigValidationError as exc:
        return cannot_probe(f"invalid settings: {'; '.join(exc.errors)}")
    try:
        report = run_probe(tap)
    except (ProbeUnavailable, ContactBasedError) as exc:
        return cannot_probe(str(exc))
    click.echo(report.to_table(), nl=False)
    if report_path is not None:
        try:
            write_private(Path(report_path), report.to_json())
        except OSError as exc:
            return cannot_probe(f"cannot write {report_path}: {exc.strerror}")
    return report.exit_code


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (0600), an existing one included."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def cannot_probe(message: str) -> int:
    """One line on stderr, redacted; the probe's exit status for "could not probe"."""
    print(f"tap-contactbased: error: probe: {clean(message)}", file=sys.stderr)
    return EXIT_CANNOT_PROBE
