"""Contract drift: whatever [assumed] field the API leaves out or spells otherwise, no row is lost.

The rule (docs/contactbased-api.md marks what is assumed): for every drift the tap either
delivers everything, or stops with one clear line that leaves the window undelivered in the
state, so that the next run delivers it once the cause is gone. Never exit 0 with rows
missing, never a traceback, never a second export on a rerun.

Each case syncs every stream of two feeds (two pages each) with enrichment, then runs again
from the state with the drift still there, then once more after it is gone.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

import pytest

from tests.conftest import (
    ALL_STREAMS,
    YESTERDAY,
    make_config,
    shorten_export_waits,
)
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.run_checks import new_api, one_clear_line, partition
from tests.singer_run import SyncResult, run_tap, selected_catalog

DELIVERS, STOPS = "delivers", "stops"
BOTH, CSV, PAGES = ("csv", "pages"), ("csv",), ("pages",)


@dataclass(frozen=True)
class Drift:
    """One drift of the API: a field of a response family dropped or spelled otherwise."""

    family: str
    field: str
    verdict: str  # what the first run does: deliver everything, or stop in one line
    read_modes: tuple[str, ...] = CSV
    respelled: bool = False

    @property
    def knob(self) -> dict[str, dict[str, str | None]]:
        return {self.family: {self.field: f"{self.field}_v2" if self.respelled else None}}

    @property
    def id(self) -> str:
        return f"{self.family}.{self.field} {'respelled' if self.respelled else 'dropped'}"


def drops(family: str, verdicts: dict[str, str], modes: tuple[str, ...] = CSV) -> list[Drift]:
    return [Drift(family, field, verdict, modes) for field, verdict in verdicts.items()]


SUMMARY = {
    "export_id": STOPS,  # nothing can be read of an export the tap cannot name
    "feed_id": DELIVERS,
    "status": STOPS,  # an export whose status is unknown is never guessed to be ready
    "build_progress": DELIVERS,
    "build_error": DELIVERS,
    "lookback_days": DELIVERS,
    "page_size": DELIVERS,
    "max_rows": DELIVERS,
    "require_contact_id": DELIVERS,
    "consumer_filters": DELIVERS,
    "enrichment_bundles": DELIVERS,
    "start_date": DELIVERS,
    "end_date": DELIVERS,
    "total_rows": DELIVERS,
    "total_pages": DELIVERS,
    "columns": DELIVERS,
    "records_reserved": DELIVERS,
    "created_at": DELIVERS,
    "updated_at": DELIVERS,
}
DRIFTS: list[Drift] = [
    *drops("summary", SUMMARY, BOTH),
    *(Drift("summary", f, v, CSV, respelled=True) for f, v in SUMMARY.items()),
    Drift("page", "rows", STOPS, PAGES),
    Drift("page", "rows", STOPS, PAGES, respelled=True),
    Drift("page", "page", DELIVERS, PAGES),
    *drops("count", {"total_rows": DELIVERS, "rows_with_contact_id": DELIVERS}, BOTH),
    Drift("count", "records_required", DELIVERS, BOTH),
    *drops(
        "credits",
        {
            "records_total": DELIVERS,
            "records_used": DELIVERS,
            "records_reserved": DELIVERS,
            "records_remaining": DELIVERS,
            "period_start": DELIVERS,
            "period_end": DELIVERS,
        },
    ),
    *drops(
        "envelope", {"items": STOPS, "page": DELIVERS, "page_size": DELIVERS, "total": DELIVERS}
    ),
    *drops("preview", {"columns": DELIVERS, "rows": DELIVERS, "estimated_rows": DELIVERS}),
    *drops(
        "search",
        {
            "start_date": DELIVERS,
            "end_date": DELIVERS,
            "daily_counts": STOPS,
            "total_records": DELIVERS,
        },
    ),
    *drops("download_url", {"url": STOPS, "expires_at": DELIVERS, "export_id": DELIVERS}),
    *drops("feed", {"feed_id": STOPS, "max_lookback_days": DELIVERS, "name": DELIVERS}),
    *drops("bundles", {"bundles": STOPS, "key": STOPS, "enabled": DELIVERS, "label": DELIVERS}),
    *drops("filter_fields", {"fields": STOPS, "field": DELIVERS, "operators": DELIVERS}),
    *drops("feed_limit", {"feed_limit": DELIVERS, "feeds_remaining": DELIVERS}),
    *drops("enrich", {"results": STOPS, "found": DELIVERS, "data": STOPS, "requested": DELIVERS}),
]
CASES = [
    pytest.param(drift, mode, id=f"{drift.id} ({mode})")
    for drift in DRIFTS
    for mode in drift.read_modes
]


def expected_rows(api: FakeContactBased) -> dict[tuple[str, int], dict[str, t.Any]]:
    rows: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.exports:
        if api.exports[export_id].status == "ready":
            rows.update(delivered_rows(api, export_id, YESTERDAY))
    return rows


def assert_nothing_marked_delivered_is_missing(
    api: FakeContactBased, results: list[SyncResult], feeds: list[str]
) -> None:
    """A feed whose window the state calls delivered has every row of it in the target."""
    loaded = by_key(r for result in results for r in result.records("export_rows"))
    state = next((r.last_state for r in reversed(results) if r.last_state), None)
    for feed_id in feeds:
        bookmark = partition(state, feed_id)
        if bookmark.get("delivered_through") == YESTERDAY.isoformat():
            assert "in_flight" not in bookmark
            wanted = {k: v for k, v in expected_rows(api).items() if v["feed_id"] == feed_id}
            assert wanted
            assert {k: loaded.get(k) for k in wanted} == wanted


@pytest.mark.parametrize(("drift", "read_mode"), CASES)
def test_drift_delivers_everything_or_stops_leaving_the_window_undelivered(
    drift: Drift, read_mode: str
) -> None:
    api = new_api()
    try:
        config = make_config(api, enrichment_bundles=["emails"], read_mode=read_mode)
        feeds = config["feed_ids"]
        catalog = selected_catalog(config, ALL_STREAMS)
        api.faults.drift = drift.knob

        first = run_tap(config, catalog=catalog, raise_errors=False)

        if drift.verdict == DELIVERS:
            assert first.error is None, first.error
        else:
            one_clear_line(first.error)
        assert_nothing_marked_delivered_is_missing(api, [first], feeds)
        created = list(api.created_exports)
        assert len(created) <= len(feeds)

        again = run_tap(config, catalog=catalog, state=first.last_state, raise_errors=False)

        assert api.created_exports == created  # never a second export on a rerun
        if again.error is not None:
            one_clear_line(again.error)
        assert_nothing_marked_delivered_is_missing(api, [first, again], feeds)

        api.faults.drift = {}
        state = again.last_state or first.last_state
        last = run_tap(config, catalog=catalog, state=state, raise_errors=False)

        assert last.error is None, last.error
        assert len(api.created_exports) == len(feeds)
        records = [r for run in (first, again, last) for r in run.records("export_rows")]
        assert by_key(records) == expected_rows(api)
        assert {r["feed_id"] for r in records} == set(feeds)
    finally:
        api.stop()


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
@pytest.mark.parametrize(
    ("ready", "building"),
    [("READY", "BUILDING"), (" Ready ", " Building "), ("ready\n", "building\n")],
)
def test_a_status_spelled_otherwise_is_read_as_what_it_means(
    ready: str, building: str, read_mode: str
) -> None:
    api = new_api()
    try:
        api.faults.status_spelling = {"ready": ready, "building": building}
        config = make_config(api, read_mode=read_mode)

        result = run_tap(config, streams=["export_rows"])

        assert by_key(result.records("export_rows")) == expected_rows(api)
        assert len(api.created_exports) == len(config["feed_ids"])
    finally:
        api.stop()


@pytest.mark.parametrize(
    "drift",
    [
        pytest.param({}, id="total_rows given"),
        pytest.param({"summary": {"total_rows": None}}, id="only total_pages and the count"),
        pytest.param({"summary": {"total_rows": None, "total_pages": None}}, id="only the count"),
    ],
)
def test_a_csv_that_ends_early_without_an_error_is_not_taken_for_the_whole_export(
    drift: dict[str, t.Any],
) -> None:
    api = new_api()
    try:
        config = make_config(api, read_mode="csv", feed_ids=api.feed_ids[:1])
        api.faults.drift = drift
        api.faults.csv_rows_missing = 3

        first = run_tap(config, streams=["export_rows"], raise_errors=False)

        one_clear_line(first.error)
        assert "the data ended after" in str(first.error)
        bookmark = partition(first.last_state, api.feed_ids[0])
        assert "delivered_through" not in bookmark
        in_flight = bookmark["in_flight"]["export_id"]
        assert in_flight == api.created_exports[0]

        api.faults.csv_rows_missing = 0
        second = run_tap(config, streams=["export_rows"], state=first.last_state)

        assert api.created_exports == [in_flight]
        records = first.records("export_rows") + second.records("export_rows")
        assert by_key(records) == expected_rows(api)
    finally:
        api.stop()


def test_the_cb_id_spelling_of_options_is_recognised_when_the_state_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shorten_export_waits(monkeypatch, stall_timeout_seconds=0.3)
    api = new_api()
    try:
        api.faults.id_column = "cb_id"
        api.faults.stall_exports = True
        config = make_config(api, require_contact_id=True, feed_ids=api.feed_ids[:1])

        stopped = run_tap(config, streams=["export_rows"], raise_errors=False)

        assert "made no progress" in str(stopped.error)
        api.faults.stall_exports = False
        for export in api.exports.values():
            export.stalled = False
        # The state of the stopped run is lost: the export must be found on the API.
        result = run_tap(config, streams=["export_rows", "exports"])

        assert len(api.created_exports) == 1
        assert by_key(result.records("export_rows")) == expected_rows(api)
        summaries = result.records("exports")
        assert summaries
        assert all(s["require_contact_id"] is True for s in summaries)
        assert all("require_cb_id" not in s for s in summaries)
    finally:
        api.stop()


def test_an_export_whose_options_are_not_echoed_is_resumed_from_the_state_only(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    shorten_export_waits(monkeypatch, stall_timeout_seconds=0.3)
    api = new_api()
    try:
        api.faults.drift = {"summary": {"lookback_days": None}}
        api.faults.stall_exports = True
        config = make_config(api, feed_ids=api.feed_ids[:1])

        stopped = run_tap(config, streams=["export_rows"], raise_errors=False)
        assert "made no progress" in str(stopped.error)
        api.faults.stall_exports = False
        for export in api.exports.values():
            export.stalled = False

        resumed = run_tap(config, streams=["export_rows"], state=stopped.last_state)

        assert len(api.created_exports) == 1  # the state named it: resumed
        assert by_key(resumed.records("export_rows")) == expected_rows(api)

        with caplog.at_level("WARNING"):
            fresh = run_tap({**config, "export_mode": "snapshot"}, streams=["export_rows"])

        unproven = api.created_exports[0]
        assert f"Export {unproven}" in caplog.text
        assert "does not echo lookback_days" in caplog.text
        assert len(api.created_exports) == 2  # without the state nothing proves it the same
        assert fresh.records("export_rows")
    finally:
        api.stop()
