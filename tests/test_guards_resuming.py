"""Exports resumed from the state, each decision proven by what it logs or leaves behind.

A resumed export and the days after it in one run, the clamp of a resumed export that ends
before its state says, exports in flight that the API lost or failed, a snapshot resume of
one feed of two, the in-flight record (its count and page size, its window in messages),
and the STATE that records a new export in flight before the first poll. Where find-or-create
could stand in for the resume, the API does not echo what it would need.
"""

from __future__ import annotations

import datetime
import logging
import typing as t

import pytest

from tap_contactbased import endpoints, retry
from tap_contactbased.lifecycle import ExportLifecycle
from tap_contactbased.summary import ExportOptions
from tests.conftest import TODAY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api.faults import Hit
from tests.run_checks import (
    cost_receipt,
    feed_entry,
    in_flight,
    one_clear_line,
    partition,
    tap_state,
)
from tests.singer_run import SyncResult, run_tap

PAGE_SIZE = 1000
CLAMPED = "ends before the window planned for it"
LIST = f"POST {endpoints.EXPORTS_LIST}"


def day(days_before_today: int) -> str:
    return (TODAY - datetime.timedelta(days=days_before_today)).isoformat()


def export_made_days_ago(api: FakeContactBased, feed_id: str, days_ago: int) -> str:
    """An export of the run's options made `days_ago` days ago, so its window ends then."""
    api.today = TODAY - datetime.timedelta(days=days_ago)
    made = api.make_ready_export(**ExportOptions(feed_id, 7, PAGE_SIZE).body())
    api.today = TODAY
    return made


# A resumed export, then the days after it


def resume_an_older_export(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, deliver_through: str
) -> tuple[SyncResult, str]:
    """Resume an export that ended 3 days ago, its state delivering through `deliver_through`."""
    feed = api.feed_ids[0]
    made = export_made_days_ago(api, feed, 3)
    flight = in_flight(api, made, deliver_through=deliver_through)
    assert flight["end_date"] == day(3)
    state = tap_state(feed_entry(feed, delivered_through=day(10), in_flight=flight))
    with caplog.at_level(logging.INFO):
        result = run_tap(make_config(api, feed_ids=[feed]), streams=["export_rows"], state=state)
    return result, made


def test_a_resumed_export_and_the_days_after_it_are_delivered_in_the_same_run(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    result, made = resume_an_older_export(api, caplog, deliver_through=day(4))

    (created,) = api.created_exports
    assert api.exports[created].summary()["start_date"] == day(3)  # the day after the resumed
    expected = {**delivered_rows(api, made, TODAY - datetime.timedelta(days=4))}
    expected.update(delivered_rows(api, created, YESTERDAY))
    assert by_key(result.records("export_rows")) == expected
    assert CLAMPED not in caplog.text
    bookmark = partition(result.last_state, api.feed_ids[0])
    assert bookmark["delivered_through"] == YESTERDAY.isoformat()
    assert bookmark["last_export_id"] == created
    assert cost_receipt(caplog)["reused"] == [made]


def test_a_resumed_export_that_ends_before_its_state_says_drops_the_window_after_it(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    # The state delivers through the export's last day, which was not over when it was made.
    result, made = resume_an_older_export(api, caplog, deliver_through=day(3))

    feed = api.feed_ids[0]
    assert (
        f"export {made} of feed {feed} ({day(9)}..{day(3)}) {CLAMPED}: it delivers through "
        f"{day(4)}, not {day(3)}; the next run exports the days after."
    ) in caplog.text
    assert api.created_exports == []  # the window after it was dropped, not created
    expected = delivered_rows(api, made, TODAY - datetime.timedelta(days=4))
    assert by_key(result.records("export_rows")) == expected
    assert partition(result.last_state, feed)["delivered_through"] == day(4)


def feed_lookups(api: FakeContactBased, feed_id: str, resumed: str) -> list[bool]:
    """Each search of the feed's exports, True when the resumed export was being read by then."""
    reading = False
    lookups = []
    for request in api.requests:
        body = request.body if isinstance(request.body, dict) else {}
        if request.path in (endpoints.EXPORTS_PAGE, endpoints.EXPORTS_DOWNLOAD_URL):
            reading = reading or body.get("export_id") == resumed
        elif request.path == endpoints.EXPORTS_LIST and body.get("feed_id") == feed_id:
            lookups.append(reading)
    return lookups


def test_the_window_after_a_resumed_export_is_looked_for_once_its_turn_comes(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    result, made = resume_an_older_export(api, caplog, deliver_through=day(4))

    (created,) = api.created_exports
    assert api.exports[created].summary()["start_date"] == day(3)
    # Once before the create and once after it (the overlap check), both after the resumed
    # export was read: a search at plan time could not be acted on.
    assert feed_lookups(api, api.feed_ids[0], made) == [True, True]
    assert partition(result.last_state, api.feed_ids[0])["last_export_id"] == created


def test_a_window_dropped_after_a_clamped_resumed_export_is_never_looked_for(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    result, made = resume_an_older_export(api, caplog, deliver_through=day(3))

    assert CLAMPED in caplog.text
    assert api.created_exports == []
    assert feed_lookups(api, api.feed_ids[0], made) == []
    assert partition(result.last_state, api.feed_ids[0])["delivered_through"] == day(4)


# Exports left in flight that are gone or failed


def test_exports_left_in_flight_gone_or_failed_leave_the_state_and_the_others_resume(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    gone, failed, resumed = api.feed_ids
    api.faults.fail_exports = True
    failed_export = api.make_ready_export(**ExportOptions(failed, 7, PAGE_SIZE).body())
    api.faults.fail_exports = False
    ready = api.make_ready_export(**ExportOptions(resumed, 7, PAGE_SIZE).body())
    api.faults.drift = {"summary": {"lookback_days": None}}  # find-or-create cannot find it
    lost = {"export_id": "exp_gone"}  # not on the API
    delivered = YESTERDAY.isoformat()  # nothing left to deliver but the exports in flight
    state = tap_state(
        feed_entry(gone, delivered_through=delivered, in_flight={**in_flight(api, ready), **lost}),
        feed_entry(failed, delivered_through=delivered, in_flight=in_flight(api, failed_export)),
        feed_entry(resumed, in_flight=in_flight(api, ready)),
    )

    with caplog.at_level(logging.WARNING):
        result = run_tap(
            make_config(api, feed_ids=api.feed_ids), streams=["export_rows"], state=state
        )

    for feed, export_id, word in ((gone, "exp_gone", "gone"), (failed, failed_export, "failed")):
        assert (
            f"The export {export_id} left in flight for feed {feed} by an earlier run is "
            f"{word}; planning a new one."
        ) in caplog.text
        assert "in_flight" not in partition(result.last_state, feed)  # not warned of again
    assert api.created_exports == []  # the third feed's export was resumed, not created
    assert by_key(result.records("export_rows")) == delivered_rows(api, ready, YESTERDAY)


# Snapshot mode


def test_a_snapshot_run_resumes_one_feed_and_exports_the_other(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    resumed, other = api.feed_ids[:2]
    made = api.make_ready_export(**ExportOptions(resumed, 7, PAGE_SIZE).body())
    api.faults.drift = {"summary": {"lookback_days": None}}  # find-or-create cannot find it
    flight = in_flight(api, made, deliver_through=None)
    state = tap_state(feed_entry(resumed, in_flight=flight))
    config = make_config(api, feed_ids=[resumed, other], export_mode="snapshot")

    with caplog.at_level(logging.WARNING):
        result = run_tap(config, streams=["export_rows"], state=state)

    (created,) = api.created_exports  # no second snapshot of the resumed feed
    assert api.exports[created].feed_id == other
    expected = {**delivered_rows(api, made, None), **delivered_rows(api, created, None)}
    assert by_key(result.records("export_rows")) == expected
    assert "cannot be exported any more" not in caplog.text  # a snapshot skips no day


# The in-flight record


def state_in_flight(api: FakeContactBased, read_mode: str) -> tuple[dict[str, t.Any], str]:
    """The first STATE a run wrote with its export in flight, and that export."""
    config = make_config(api, feed_ids=api.feed_ids[:1], read_mode=read_mode)
    first = run_tap(config, streams=["export_rows"])
    (export_id,) = api.created_exports
    state = next(s for s in first.states if partition(s, api.feed_ids[0]).get("in_flight"))
    return state, export_id


def resumed_line(export_id: str, feed_id: str) -> str:
    return f"Resuming export {export_id} of feed {feed_id} ({day(6)}..{TODAY}) after row 0,"


def test_a_state_in_flight_keeps_the_count_so_a_resumed_csv_that_ends_early_is_stopped(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    feed = api.feed_ids[0]
    state, export_id = state_in_flight(api, "csv")
    flight = partition(state, feed)["in_flight"]
    total = api.exports[export_id].total_rows
    assert (flight["expected_rows"], flight["page_size"]) == (total, PAGE_SIZE)
    # Only the count in the state can tell the rows are missing; messages name the
    # export's window as the API gives it, the state giving none.
    del flight["start_date"], flight["end_date"]
    api.faults.drift = {"summary": {"total_rows": None, "total_pages": None}}
    api.faults.csv_rows_missing = 3

    with caplog.at_level(logging.INFO):
        result = run_tap(
            make_config(api, feed_ids=[feed], read_mode="csv"),
            streams=["export_rows"],
            state=state,
            raise_errors=False,
        )

    assert resumed_line(export_id, feed) in caplog.text
    one_clear_line(result.error)
    assert f"but the count before the export was created said {total:,}" in str(result.error)
    assert api.created_exports == [export_id]


def test_a_state_in_flight_keeps_the_page_size_the_api_does_not_echo(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    feed = api.feed_ids[0]
    state, export_id = state_in_flight(api, "pages")
    # Pages are numbered by the state's page size; messages name the state's window.
    api.faults.drift = {"summary": {"page_size": None, "start_date": None, "end_date": None}}

    with caplog.at_level(logging.INFO):
        result = run_tap(
            make_config(api, feed_ids=[feed], read_mode="pages"),
            streams=["export_rows"],
            state=state,
        )

    assert resumed_line(export_id, feed) in caplog.text
    assert by_key(result.records("export_rows")) == delivered_rows(api, export_id, YESTERDAY)
    assert api.created_exports == [export_id]


def test_an_export_created_after_the_apis_midnight_is_recorded_with_its_own_window(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = api.feed_ids[0]
    count = ExportLifecycle.count

    def midnight_after_the_count(lifecycle: ExportLifecycle, options: t.Any) -> t.Any:
        counted = count(lifecycle, options)
        api.today = TODAY + datetime.timedelta(days=1)  # the create makes a later window
        return counted

    monkeypatch.setattr(ExportLifecycle, "count", midnight_after_the_count)
    config = make_config(api, feed_ids=[feed])

    first = run_tap(config, streams=["export_rows"])

    (created,) = api.created_exports
    written = next(s for s in first.states if partition(s, feed).get("in_flight"))
    flight = partition(written, feed)["in_flight"]
    assert (flight["start_date"], flight["end_date"]) == (day(5), day(-1))  # not the plan's
    assert flight["deliver_through"] == YESTERDAY.isoformat()
    monkeypatch.setattr(ExportLifecycle, "count", count)
    # The state written while it was in flight resumes it: the window it names is the API's.
    again = run_tap(config, streams=["export_rows"], state=written)

    first_created, later = api.created_exports  # the later one: the day completed since
    assert first_created == created
    assert api.exports[later].summary()["start_date"] == TODAY.isoformat()
    expected = {**delivered_rows(api, created, YESTERDAY), **delivered_rows(api, later, TODAY)}
    assert by_key(again.records("export_rows")) == expected


# The STATE that records a new export in flight


def test_a_new_export_is_in_the_state_before_the_first_poll(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = api.feed_ids[0]
    # Without its window the summary proves nothing to find-or-create (and asks for no
    # overlap check): only the state can resume the export.
    api.faults.drift = {"summary": {"start_date": None, "end_date": None}}
    record = api.record

    def api_gone_after_the_create(entry: t.Any) -> None:
        record(entry)
        if (entry.path, entry.status) == (endpoints.EXPORTS, 201):
            api.faults.aimed = {LIST: ["drop"] * retry.MAX_TRIES}

    monkeypatch.setattr(api, "record", api_gone_after_the_create)
    config = make_config(api, feed_ids=[feed])

    first = run_tap(config, streams=["export_rows"], raise_errors=False)

    one_clear_line(first.error)
    (created,) = api.created_exports
    assert api.fault_engine.hits == [Hit(LIST, "drop")] * retry.MAX_TRIES
    dropped = [r.body for r in api.requests if r.path == endpoints.EXPORTS_LIST and not r.status]
    assert dropped == [{"export_ids": [created], "page": 1, "page_size": 1}] * retry.MAX_TRIES
    assert first.records("export_rows") == []
    assert partition(first.last_state, feed)["in_flight"]["export_id"] == created

    monkeypatch.setattr(api, "record", record)
    second = run_tap(config, streams=["export_rows"], state=first.last_state)

    assert api.created_exports == [created]
    assert by_key(second.records("export_rows")) == delivered_rows(api, created, YESTERDAY)
