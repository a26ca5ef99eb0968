"""What the tap should have emitted for the exports the local API served.

The expected record of a served row follows the contract's rules, written here without the
tap's code: every column typed, a column the catalog does not know and a value that does not
fit its type kept as text in `extra_columns` (absent when there is none), a contract column
the export lacks null. Records are compared whole; a test that leaves a property out of a
comparison names it and says why (`leave_out`).
"""

from __future__ import annotations

import datetime
import json
import math
import typing as t

from tests.fake_api import CONTRACT_COLUMNS, FakeContactBased

if t.TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping

EXTRA_COLUMNS = "extra_columns"
ID_SPELLINGS = frozenset({"contact_id", "cb_id"})
BUNDLE_PREFIX = "bundle_"
# Property -> why a test leaves it out of a comparison.
LeaveOut = t.Mapping[str, str]


def finite_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def timestamp(text: str) -> str:
    datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return text


def date(text: str) -> str:
    datetime.date.fromisoformat(text)
    return text


def json_object(text: str) -> dict[str, t.Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


# The contract's columns whose value is not their text, or whose text must have a form.
TYPED: dict[str, Callable[[str], t.Any]] = {
    "intent_score": finite_number,
    "signal_date": date,
    "first_seen": timestamp,
    "last_seen": timestamp,
}


def expected_record(
    export_id: str,
    feed_id: str,
    number: int,
    row: Mapping[str, t.Any],
    *,
    known_columns: Collection[str] = (),
) -> dict[str, t.Any]:
    """A served row as the tap must emit it.

    `known_columns` are the columns beyond the contract's that the run's catalog types as
    text (discovery saw them in a preview); any other column the contract does not name is
    kept in `extra_columns`.
    """
    record: dict[str, t.Any] = dict.fromkeys(CONTRACT_COLUMNS)
    record.update(export_id=export_id, feed_id=feed_id, export_row=number)
    extra: dict[str, str | None] = {}
    typed: set[str] = set()
    for column, value in row.items():
        text = value if value not in (None, "") else None
        name = "contact_id" if column in ID_SPELLINGS else column
        known = name in CONTRACT_COLUMNS or name.startswith(BUNDLE_PREFIX) or name in known_columns
        if not known or name in typed:
            extra[column] = text
            continue
        typed.add(name)
        convert = json_object if name.startswith(BUNDLE_PREFIX) else TYPED.get(name, str)
        try:
            record[name] = None if text is None else convert(text)
        except ValueError:
            record[name] = None
            extra[name] = text
    if extra:
        record[EXTRA_COLUMNS] = extra
    return record


def delivered_rows(
    api: FakeContactBased,
    export_id: str,
    through: datetime.date | None,
    *,
    known_columns: Collection[str] = (),
    leave_out: LeaveOut | None = None,
) -> dict[tuple[str, int], dict[str, t.Any]]:
    """The records a run delivers of an export, keyed by primary key."""
    export = api.exports[export_id]
    rows = {}
    for number, row in enumerate(export.rows(), start=1):
        day = row.get("signal_date")
        if through is not None and day and day > through.isoformat():
            continue
        record = expected_record(
            export_id, export.feed_id, number, row, known_columns=known_columns
        )
        rows[(export_id, number)] = without(record, leave_out)
    return rows


def without(record: Mapping[str, t.Any], leave_out: LeaveOut | None) -> dict[str, t.Any]:
    """The record without the properties a test leaves out, each with its reason."""
    if not leave_out:
        return dict(record)
    unexplained = [name for name, reason in leave_out.items() if not reason.strip()]
    assert not unexplained, f"say why the comparison leaves out {unexplained}"
    return {k: v for k, v in record.items() if k not in leave_out}


def by_key(
    records: Iterable[Mapping[str, t.Any]], *, leave_out: LeaveOut | None = None
) -> dict[tuple[str, int], dict[str, t.Any]]:
    """Records keyed by (export_id, export_row); later duplicates win, like an upsert."""
    return {(r["export_id"], r["export_row"]): without(r, leave_out) for r in records}
