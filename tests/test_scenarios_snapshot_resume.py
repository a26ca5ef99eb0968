"""Snapshot mode, killed while its exports build and then mid-read, resumes the same exports.

Snapshot mode plans a new window on every run, so only the export the state names keeps a
restarted run from paying for a second one. Here the API does not echo `lookback_days`:
find-or-create cannot prove an export on the API is the same and would create another, so
resuming from the state is the only guard. The kill harness SIGKILLs the tap as a process
and restarts it from the last STATE it wrote.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.kill_harness import (
    Attempt,
    flights,
    last_state,
    mid_page,
    run_with_kills,
    since_last_state,
    while_building,
)
from tests.singer_run import selected_catalog

PAGE_SIZE = 1000
RECORDS_AFTER_STATE = 137


def export_rows(attempt: Attempt) -> list[dict[str, t.Any]]:
    return [
        m["record"]
        for m in attempt.messages
        if m["type"] == "RECORD" and m["stream"] == "export_rows"
    ]


def rows_done(state: dict[str, t.Any] | None) -> dict[str, int]:
    """export_id -> rows the state confirms, for each export it has in flight."""
    if state is None:
        return {}
    return {f["export_id"]: f["rows_done"] for f in flights({"value": state})}


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
def test_snapshot_killed_while_building_and_mid_read_resumes_the_same_exports(
    paged_api: FakeContactBased, tmp_path: Path, read_mode: str
) -> None:
    paged_api.faults.drift = {"summary": {"lookback_days": None}}
    config = make_config(
        paged_api, read_mode=read_mode, page_size=PAGE_SIZE, export_mode="snapshot"
    )
    catalog = selected_catalog(config, ["export_rows"])

    campaign = run_with_kills(
        config, catalog, [while_building(), mid_page(RECORDS_AFTER_STATE)], tmp_path
    )

    building, reading, finishing = campaign.attempts
    feeds = len(config["feed_ids"])
    # The kills hit where they were meant to: first once every export was created and
    # before any row, then in the middle of a page after a confirmed one.
    assert building.killed
    assert export_rows(building) == []
    assert sorted(rows_done(last_state(building.messages)).values()) == [0] * feeds
    assert reading.killed
    seen, confirmed = since_last_state(reading.messages)
    assert confirmed is not None
    assert seen >= RECORDS_AFTER_STATE
    assert any(rows_done(confirmed["value"]).values())
    assert not finishing.killed
    # No second export: each restart resumed the ones the first run created.
    assert paged_api.count_requests("POST", "/intent/feeds/exports") == feeds
    created = paged_api.created_exports
    assert len(created) == feeds
    # Each restart began right after the rows its state confirmed: it re-sent at most the
    # page the kill interrupted, and dropped nothing.
    for before, attempt in ((building, reading), (reading, finishing)):
        done = rows_done(last_state(before.messages))
        assert set(done) == set(created)
        first_rows: dict[str, int] = {}
        for record in export_rows(attempt):
            first_rows.setdefault(record["export_id"], record["export_row"])
        assert first_rows
        assert first_rows == {e: done[e] + 1 for e in first_rows}
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in created:
        assert paged_api.exports[export_id].total_pages >= 2
        expected.update(delivered_rows(paged_api, export_id, None))  # today included
    records = campaign.records("export_rows")
    assert by_key(records) == expected
    assert len(records) - len(expected) < PAGE_SIZE
