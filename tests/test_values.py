"""The package's one reading of numbers, dates and times (tap_contactbased/values.py)."""

from __future__ import annotations

import datetime
import typing as t

import pytest

from tap_contactbased.values import (
    date_or_none,
    is_int,
    optional_int,
    parse_timestamp,
    timestamp_or_none,
)

UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        ("12", 12),
        (12.0, 12),
        (None, None),
        (True, None),
        (False, None),
        ("twelve", None),
        (float("inf"), None),
        ([12], None),
    ],
)
def test_a_lenient_count_is_a_whole_number_or_none(value: t.Any, expected: int | None) -> None:
    assert optional_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, True), (7, True), (True, False), ("7", False), (7.0, False), (None, False)],
)
def test_a_strict_count_is_an_int_and_never_a_boolean(value: t.Any, expected: bool) -> None:
    assert is_int(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21", datetime.date(2026, 11, 21)),
        ("", None),
        (None, None),
        ("2026-02-30", None),
        ("soon", None),
        (20261121, None),
    ],
)
def test_a_date_is_read_or_none(value: t.Any, expected: datetime.date | None) -> None:
    assert date_or_none(value) == expected


def test_a_timestamp_with_z_is_utc() -> None:
    assert parse_timestamp("2026-11-21T10:00:00Z") == datetime.datetime(
        2026, 11, 21, 10, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_timestamp("yesterday")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21T10:00:00Z", datetime.datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T12:00:00+02:00", datetime.datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T10:00:00", datetime.datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_a_lenient_timestamp_is_aware_utc_or_none(
    value: t.Any, expected: datetime.datetime | None
) -> None:
    parsed = timestamp_or_none(value)

    assert parsed == expected
    assert parsed is None or parsed.utcoffset() == datetime.timedelta(0)
