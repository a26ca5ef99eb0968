"""A value that does not fit its column's type is delivered as null, its text kept aside.

The local API serves one such value in the first row of the export (pages and CSV alike):
the record holds null in that column and `extra_columns` holds the exact text served, the
other rows are untouched and the run goes on. Records are compared whole, `extra_columns`
included: a comparison that leaves it out would pass with the text lost.
"""

from __future__ import annotations

import pytest

from tests.conftest import YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.singer_run import run_tap

MISTYPED = {
    "intent_score": "n/a",
    "signal_date": "2026-02-30",
    "first_seen": "last Tuesday",
    "bundle_emails": '{"emails": [{"address": "ana@example.com"',
}


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
@pytest.mark.parametrize("column", list(MISTYPED))
def test_a_mistyped_value_is_null_with_its_text_in_extra_columns(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, column: str, read_mode: str
) -> None:
    text = MISTYPED[column]
    bundles = [column.removeprefix("bundle_")] if column.startswith("bundle_") else []
    config = make_config(
        api, feed_ids=api.feed_ids[:1], read_mode=read_mode, export_bundles=bundles
    )
    api.faults.first_row_texts = {column: text}

    with caplog.at_level("WARNING"):
        result = run_tap(config, streams=["export_rows"])

    (export_id,) = api.created_exports
    expected = delivered_rows(api, export_id, YESTERDAY)
    first = expected[(export_id, 1)]
    assert first[column] is not None  # the row had a valid value there, now replaced
    expected[(export_id, 1)] = {**first, column: None, "extra_columns": {column: text}}
    records = result.records("export_rows")
    assert by_key(records) == expected
    assert len(records) == len(expected)
    # The typer set it aside, and said so once.
    assert f"1 value(s) of {column} did not fit its type" in caplog.text
    assert result.last_state is not None
    (partition,) = result.last_state["bookmarks"]["export_rows"]["partitions"]
    assert partition["delivered_through"] == YESTERDAY.isoformat()
