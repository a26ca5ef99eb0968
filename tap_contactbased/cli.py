"""The `tap-contactbased` command: the SDK's CLI, with one line for known failures.

For the failures a user can act on, the message replaces the traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import typing as t

import simplejson
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from tap_contactbased import redaction
from tap_contactbased.errors import ContactBasedError
from tap_contactbased.probe.command import probe_options
from tap_contactbased.tap import TapContactBased

EXPECTED_FAILURES = (ContactBasedError, FatalAPIError, RetriableAPIError)
# The SDK reads --config with `json` and --state/--catalog with `simplejson`.
INVALID_JSON = (json.JSONDecodeError, simplejson.JSONDecodeError)


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


if __name__ == "__main__":
    main()
