"""The test suite's retry waits: the tap's retry policy kept, its waits shrunk.

`python -m tests.fast_retries ARGS` is `tap-contactbased ARGS` with these waits, for
scenarios run as a command whose retries run out (the real waits add up to minutes).
In-process runs get them from the `fast_retries` fixture of conftest.
"""

from __future__ import annotations

import sys

from tap_contactbased import retry
from tap_contactbased.cli import main

FAST_RETRY_WAITS = {"INITIAL_WAIT_SECONDS": 0.001, "MAX_WAIT_SECONDS": 0.01}
FAST_RETRIES_COMMAND = [sys.executable, "-m", "tests.fast_retries"]

if __name__ == "__main__":
    for name, value in FAST_RETRY_WAITS.items():
        setattr(retry, name, value)
    main()
