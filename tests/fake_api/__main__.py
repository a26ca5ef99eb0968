"""Run the local ContactBased API in the foreground: `python -m tests.fake_api --help`.

The first line of stdout is the base URL; then one line per `--ready-export`:
`export <export_id> feed <feed_id> rows <n>`. SIGINT or SIGTERM stops it (exit 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from . import FakeContactBased


def _rows_per_day(text: str) -> int | tuple[int, int]:
    low, _, high = text.partition(":")
    return (int(low), int(high)) if high else int(low)


def _ready_export(text: str) -> tuple[int, int]:
    index, _, lookback = text.partition(":")
    return int(index), int(lookback)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name for name in text.split(",") if name)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_api", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--api-key", default="cbk_test_key")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--feed-count", type=int, default=3)
    parser.add_argument("--rows-per-day", type=_rows_per_day, default=(5, 40), help="N or MIN:MAX")
    parser.add_argument("--build-seconds", type=float, default=0.2)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    parser.add_argument(
        "--today-fraction", type=float, default=0.5, help="share of today's rows that exist"
    )
    parser.add_argument("--credits-total", type=int, default=1_000_000, help="records credits")
    parser.add_argument(
        "--extra-columns",
        type=_names,
        default=(),
        metavar="A,B",
        help="string columns that exports add (the extra_columns knob)",
    )
    parser.add_argument(
        "--ready-export",
        type=_ready_export,
        action="append",
        default=[],
        metavar="FEED_INDEX:LOOKBACK",
        help="create an export that is ready at once (repeatable)",
    )
    parser.add_argument(
        "--export-bundles",
        type=_names,
        default=(),
        metavar="A,B",
        help="enrichment_bundles of the --ready-export exports",
    )
    parser.add_argument(
        "--export-page-size", type=int, default=None, help="page_size of the --ready-export exports"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    api = FakeContactBased(
        api_key=args.api_key,
        seed=args.seed,
        feed_count=args.feed_count,
        rows_per_day=args.rows_per_day,
        today=args.today,
        today_fraction=args.today_fraction,
        build_seconds=args.build_seconds,
        credits_total=args.credits_total,
        port=args.port,
    )
    api.faults.extra_columns = args.extra_columns
    options: dict[str, Any] = {}
    if args.export_bundles:
        options["enrichment_bundles"] = list(args.export_bundles)
    if args.export_page_size is not None:
        options["page_size"] = args.export_page_size
    with api:
        print(api.url, flush=True)
        for index, lookback in args.ready_export:
            feed_id = api.feed_ids[index]
            export_id = api.make_ready_export(feed_id, lookback, **options)
            rows = api.exports[export_id].total_rows
            print(f"export {export_id} feed {feed_id} rows {rows}", flush=True)
        while not stop.wait(0.5):  # a timed wait lets signal handlers run promptly
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
