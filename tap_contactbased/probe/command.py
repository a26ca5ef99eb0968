"""The probe as a command: run it, print its table, write its report, give the exit status.

`cli.py` puts `--probe` and `--probe-report FILE` on the tap's command line and reads the
config there exactly as a run does; this module needs only the settings and the key.
"""

from __future__ import annotations

import os
import sys
import typing as t

from tap_contactbased.errors import ContactBasedError
from tap_contactbased.probe import ProbeUnavailable, run_probe
from tap_contactbased.redaction import clean

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_contactbased.settings import Settings

EXIT_CANNOT_PROBE = 2


def probe(settings: Settings, api_key: str, report_path: Path | None) -> int:
    """Run the probe, print its table, write its report; return the exit status."""
    try:
        report = run_probe(settings, api_key)
    except (ProbeUnavailable, ContactBasedError) as exc:
        return cannot_probe(str(exc))
    sys.stdout.write(report.to_table())
    sys.stdout.flush()
    if report_path is not None:
        try:
            write_private(report_path, report.to_json())
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
