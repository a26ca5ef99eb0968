"""The `tap-contactbased` command: the SDK's CLI, with one line for known failures.

`--probe` and `--probe-report FILE` ride on the SDK's click command, so the probe reads its
config exactly as a run does (`--config` files, `--config ENV`, several merged).
`--probe-report` alone also probes: a forgotten `--probe` must never start a sync, which
could create (and bill) exports.
"""

from __future__ import annotations

import json
import logging
import sys
import typing as t
from pathlib import Path

import click
import simplejson
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from tap_contactbased import redaction
from tap_contactbased.connection_settings import api_key_of
from tap_contactbased.errors import ContactBasedError
from tap_contactbased.probe.command import EnvSettingError, cannot_probe, env_config, probe
from tap_contactbased.settings import Settings
from tap_contactbased.tap import TapContactBased

EXPECTED_FAILURES = (ContactBasedError, FatalAPIError, RetriableAPIError)
# The SDK reads --config with `json` and --state/--catalog with `simplejson`.
INVALID_JSON = (json.JSONDecodeError, simplejson.JSONDecodeError)
REPORT_KEY = "tap_contactbased.probe_report"


def main() -> None:
    """Run the tap; a known failure ends with its message and exit status 1."""
    command = TapContactBased.cli  # sets up the SDK's logging
    redaction.install()
    command.params.extend(probe_options())  # --probe: free checks of the API, then exit
    try:
        command()
    except EXPECTED_FAILURES as exc:
        fail(str(exc))
    except ConfigValidationError as exc:
        # A sync reports these itself; the --test and --discover callbacks let them through.
        fail(f"The config is invalid: {'; '.join(exc.errors) or exc}. Fix the settings named.")
    except INVALID_JSON as exc:
        # Only the input files are parsed this way outside a request's own error handling.
        fail(
            f"An input file (--config, --catalog or --state) is not valid JSON: {exc.msg} at "
            f"line {exc.lineno}, column {exc.colno}."
        )


def fail(message: str) -> t.NoReturn:
    """End the run with one line; the traceback (redacted) goes to the debug log only."""
    logging.getLogger(TapContactBased.name).debug("Failure detail", exc_info=True)
    print(f"tap-contactbased: error: {redaction.clean(message)}", file=sys.stderr)
    sys.exit(1)


def probe_options() -> list[click.Option]:
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
    ctx.exit(probe_config(config, parse_env=parse_env, report_path=report))


def probe_config(config: dict[str, t.Any], *, parse_env: bool, report_path: str | None) -> int:
    """Check the config as a run would, then probe the API it names; the exit status."""
    try:
        if parse_env:
            config = {**config, **env_config(TapContactBased.config_jsonschema)}
        tap = TapContactBased(config=config, validate_config=True, setup_mapper=False)
    except (EnvSettingError, ContactBasedError) as exc:
        return cannot_probe(str(exc))
    except ConfigValidationError as exc:
        return cannot_probe(f"invalid settings: {'; '.join(exc.errors)}")
    settings = Settings.from_config(tap.config)
    return probe(
        settings, api_key_of(tap.config), None if report_path is None else Path(report_path)
    )


if __name__ == "__main__":
    main()
