"""Numbers, dates and times as the package reads them from the API and the state, each once."""

from __future__ import annotations

import datetime
import typing as t


def optional_int(value: t.Any) -> int | None:
    """The whole number a value stands for ("12" and 12.0 are 12); None for a boolean or junk."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return None


def is_int(value: t.Any) -> t.TypeGuard[int]:
    """An integer, and not a boolean (JSON's true is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def date_or_none(value: t.Any) -> datetime.date | None:
    """The date an ISO text (YYYY-MM-DD) names; None for an empty value, junk or another type."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def parse_timestamp(text: str) -> datetime.datetime:
    """The time an ISO 8601 text names, a trailing Z included (Python 3.10 reads no Z)."""
    return datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def timestamp_or_none(value: t.Any) -> datetime.datetime | None:
    """The time an ISO 8601 text names, in UTC (a time without offset counts as UTC); else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)
