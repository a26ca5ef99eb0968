"""The local ContactBased API for scripts/demo: its clock moves one day on SIGUSR1.

`python scripts/demo_api.py --today YYYY-MM-DD` prints the API's URL on its first line, then
`today YYYY-MM-DD` each time SIGUSR1 moves the clock; SIGINT or SIGTERM stops it.

Why not restart `python -m tests.fake_api --today <tomorrow>` for the second day: the local
API numbers its exports from zero in each process, so a restarted one hands out the export
ids of the first one again, and rows keyed by (export_id, export_row) would overwrite the
first run's rows in the warehouse. A real API never reuses an export id; one process that
moves its clock keeps them unique, and keeps the first day's exports listed too.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
import threading
import typing as t

from tests.fake_api import FakeContactBased


def main(argv: t.Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; SIGUSR1 moves the clock one day."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--today", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--api-key", default="cbk_test_key")
    args = parser.parse_args(argv)
    stop, advance = threading.Event(), threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: advance.set())
    with FakeContactBased(api_key=args.api_key, today=args.today) as api:
        print(api.url, flush=True)
        while not stop.wait(0.1):  # a timed wait lets the signal handlers run
            if advance.is_set():
                advance.clear()
                api.today = api.today + datetime.timedelta(days=1)
                print(f"today {api.today.isoformat()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
