"""What the tap should have emitted for the exports the local API served."""

from __future__ import annotations

import datetime
import json
import typing as t

from tests.fake_api import FakeContactBased

NUMERIC = {"intent_score"}


def expected_record(
    export_id: str, feed_id: str, number: int, row: dict[str, t.Any]
) -> dict[str, t.Any]:
    """A served row typed the way the contract says the tap types it."""
    record: dict[str, t.Any] = {"export_id": export_id, "feed_id": feed_id, "export_row": number}
    for column, value in row.items():
        name = "contact_id" if column == "cb_id" else column
        if value in (None, ""):
            record[name] = None
        elif name in NUMERIC:
            record[name] = float(value)
        elif name.startswith("bundle_"):
            record[name] = json.loads(value)
        else:
            record[name] = value
    return record


def delivered_rows(
    api: FakeContactBased, export_id: str, through: datetime.date | None
) -> dict[tuple[str, int], dict[str, t.Any]]:
    """The rows of an export a run delivers, keyed by primary key, typed."""
    export = api.exports[export_id]
    rows = {}
    for number, row in enumerate(export.rows(), start=1):
        day = row.get("signal_date")
        if through is not None and day and day > through.isoformat():
            continue
        rows[(export_id, number)] = expected_record(export_id, export.feed_id, number, row)
    return rows


def comparable(record: dict[str, t.Any]) -> dict[str, t.Any]:
    """A record without the catch-all column, which is null when nothing is unknown."""
    return {k: v for k, v in record.items() if k != "extra_columns"}


def by_key(records: t.Iterable[dict[str, t.Any]]) -> dict[tuple[str, int], dict[str, t.Any]]:
    """Records keyed by (export_id, export_row); later duplicates win, like an upsert."""
    return {(r["export_id"], r["export_row"]): comparable(r) for r in records}


def whole_by_key(
    records: t.Iterable[dict[str, t.Any]],
) -> dict[tuple[str, int], dict[str, t.Any]]:
    """Records keyed like `by_key`, kept whole: `extra_columns` is compared too."""
    return {(r["export_id"], r["export_row"]): r for r in records}
