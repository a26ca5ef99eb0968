"""The `tap-contactbased` command: the SDK's CLI, with one line for known failures.

For the failures a user can act on, the message replaces the traceback.
"""

from __future__ import annotations

import logging
import sys

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_contactbased.errors import ContactBasedError
from tap_contactbased.tap import TapContactBased

EXPECTED_FAILURES = (ContactBasedError, FatalAPIError, RetriableAPIError)


def main() -> None:
    """Run the tap; a known failure ends with its message and exit status 1."""
    try:
        TapContactBased.cli()
    except EXPECTED_FAILURES as exc:
        # The traceback helps only with debugging; the message is what a user acts on.
        logging.getLogger(TapContactBased.name).debug("Failure detail", exc_info=True)
        print(f"tap-contactbased: error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
