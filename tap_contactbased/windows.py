"""Which days an export asks for, and which of its rows a run delivers.

Windows always end on the API's today, and today is not over when a run happens. In
incremental mode a run therefore delivers whole days only: the days after the bookmark and
before today, so that on a daily schedule every day arrives exactly once, one day late.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from tap_contactbased.settings import SNAPSHOT


@dataclass(frozen=True)
class Window:
    """The days one export covers and the last day whose rows the run delivers."""

    lookback_days: int
    start_date: datetime.date
    end_date: datetime.date
    deliver_through: datetime.date | None  # None: deliver every row (snapshot)
    skipped_days: int = 0  # days after the bookmark the feed's cap left out


def plan_window(
    *,
    mode: str,
    today: datetime.date,
    lookback_days: int,
    max_lookback_days: int,
    delivered_through: datetime.date | None,
) -> Window | None:
    """The next window of a feed, or None when there is no complete day to deliver."""
    if mode == SNAPSHOT:
        days = min(lookback_days, max_lookback_days)
        return Window(days, today - datetime.timedelta(days=days - 1), today, None)
    yesterday = today - datetime.timedelta(days=1)
    if delivered_through is None:
        start = today - datetime.timedelta(days=lookback_days - 1)
    else:
        start = delivered_through + datetime.timedelta(days=1)
    days = (today - start).days + 1
    skipped = max(0, days - max_lookback_days)
    if skipped:
        days = max_lookback_days
        start = today - datetime.timedelta(days=days - 1)
    if start > yesterday:
        return None
    return Window(days, start, today, yesterday, skipped)


def window_text(window: Window | None) -> str:
    """`2026-11-21..2026-11-27` for log lines and errors, `?` before a window is planned."""
    return "?" if window is None else f"{window.start_date}..{window.end_date}"
