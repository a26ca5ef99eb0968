"""A state is checked against the API before anything is spent on its word.

Each row of the table is a state a target could hand back (crafted, edited by hand, or copied
from another job) whose values the API contradicts. The run must refuse it in one line that
names the value, before it creates an export, reads one, or sends an enrichment request, and
without a record of another feed.
"""

from __future__ import annotations

import datetime
import logging
import typing as t
from dataclasses import dataclass

import pytest

from tap_contactbased import endpoints
from tap_contactbased.cli import EXPECTED_FAILURES
from tap_contactbased.state import StateMismatchError
from tests.conftest import API_KEY, TODAY, YESTERDAY, make_config
from tests.fake_api import BUNDLE_KEYS, FakeContactBased
from tests.fake_api.exports import ExportOptions
from tests.run_checks import feed_entry, in_flight, partition, tap_state
from tests.singer_run import SyncResult, run_tap, selected_catalog

STREAMS = ["export_rows", "enrichment"]
READS = {endpoints.EXPORTS_PAGE, endpoints.EXPORTS_DOWNLOAD_URL}


@dataclass(frozen=True)
class Crafted:
    """The state of the configured feed (feed 0), made against the API of the test."""

    state: dict[str, t.Any]
    fragment: str  # the value the one line must name


def delivered(feed_id: str, last_export_id: str) -> dict[str, t.Any]:
    return feed_entry(
        feed_id, delivered_through=YESTERDAY.isoformat(), last_export_id=last_export_id
    )


def another_feeds_export(api: FakeContactBased) -> Crafted:
    theirs = api.make_ready_export(api.feed_ids[1], 7, page_size=1000)
    state = tap_state(feed_entry(api.feed_ids[0], in_flight=in_flight(api, theirs)))
    return Crafted(state, f"names export {theirs}, an export of feed {api.feed_ids[1]}")


def another_feeds_export_of_another_window(api: FakeContactBased) -> Crafted:
    theirs = api.make_ready_export(api.feed_ids[1], 3, page_size=1000)
    record = in_flight(api, theirs, start_date="2026-11-21")
    state = tap_state(feed_entry(api.feed_ids[0], in_flight=record))
    where = f"bookmarks.export_rows, feed {api.feed_ids[0]}, in_flight"
    # Whose export it is comes first: it is the misfit that makes the others moot.
    return Crafted(
        state,
        f"{where} names export {theirs}, an export of feed {api.feed_ids[1]} on the API: remove "
        f"that in_flight entry; {where} says export {theirs} covers 2026-11-21..",
    )


def another_window(api: FakeContactBased) -> Crafted:
    short = api.make_ready_export(api.feed_ids[0], 3, page_size=1000)
    record = in_flight(api, short, start_date="2026-11-21")
    state = tap_state(feed_entry(api.feed_ids[0], in_flight=record))
    return Crafted(state, "covers 2026-11-21..2026-11-27, but the API says 2026-11-25..2026-11-27")


def oversized_rows_done(api: FakeContactBased) -> Crafted:
    mine = api.make_ready_export(api.feed_ids[0], 7, page_size=1000)
    total = api.exports[mine].total_rows
    record = in_flight(api, mine, rows_done=total + 5000)
    state = tap_state(feed_entry(api.feed_ids[0], in_flight=record))
    return Crafted(state, f"rows_done is {total + 5000:,} but export {mine} holds {total:,} rows")


def oversized_rows_done_counted_in_pages(api: FakeContactBased) -> Crafted:
    """The summary has neither total_rows nor page_size: the state's page size counts."""
    mine = api.make_ready_export(api.feed_ids[0], 7, page_size=1000)
    api.faults.drift = {"summary": {"total_rows": None, "page_size": None}}
    most = api.exports[mine].total_pages * 1000
    record = in_flight(api, mine, rows_done=most + 1)
    state = tap_state(feed_entry(api.feed_ids[0], in_flight=record))
    return Crafted(
        state, f"rows_done is {most + 1:,} but export {mine} holds {most:,} rows (total_pages x"
    )


def oversized_expected_rows(api: FakeContactBased) -> Crafted:
    mine = api.make_ready_export(api.feed_ids[0], 7, page_size=1000)
    total = api.exports[mine].total_rows
    record = in_flight(api, mine, expected_rows=10_000_000)
    state = tap_state(feed_entry(api.feed_ids[0], in_flight=record))
    return Crafted(state, f"is 10,000,000 but export {mine} holds {total:,} rows (total_rows)")


def future_bookmark(api: FakeContactBased) -> Crafted:
    future = (TODAY + datetime.timedelta(days=5)).isoformat()
    state = tap_state(feed_entry(api.feed_ids[0], delivered_through=future))
    return Crafted(state, f"delivered_through is {future}, after the API's today ({TODAY})")


def future_delivery_in_flight(api: FakeContactBased) -> Crafted:
    future = (TODAY + datetime.timedelta(days=5)).isoformat()
    mine = api.make_ready_export(api.feed_ids[0], 7, page_size=1000)
    state = tap_state(
        feed_entry(api.feed_ids[0], in_flight=in_flight(api, mine, deliver_through=future))
    )
    return Crafted(state, f"in_flight.deliver_through is {future}, after the API's today ({TODAY})")


def big_export_of(api: FakeContactBased, feed_index: int) -> str:
    """A ready export with many contacts, as one a state should not make the tap enrich."""
    return api.make_ready_export(api.feed_ids[feed_index], 30, page_size=1000)


def pending_of_an_unconfigured_feed(api: FakeContactBased) -> Crafted:
    mine, theirs = api.make_ready_export(api.feed_ids[0], 7), big_export_of(api, 2)
    entry = {"export_id": theirs, "feed_id": api.feed_ids[2], "deliver_through": None}
    state = tap_state(delivered(api.feed_ids[0], mine), pending=[entry])
    return Crafted(state, f"names export {theirs} of feed {api.feed_ids[2]}, which is not in")


def pending_of_an_unconfigured_feed_with_days_to_export(api: FakeContactBased) -> Crafted:
    """The export stream would create an export before the enrichment stream runs."""
    theirs = big_export_of(api, 2)
    entry = {"export_id": theirs, "feed_id": api.feed_ids[2], "deliver_through": None}
    bookmark = (TODAY - datetime.timedelta(days=3)).isoformat()
    state = tap_state(feed_entry(api.feed_ids[0], delivered_through=bookmark), pending=[entry])
    return Crafted(state, f"names export {theirs} of feed {api.feed_ids[2]}, which is not in")


def pending_the_feed_never_delivered(api: FakeContactBased) -> Crafted:
    mine, other = api.make_ready_export(api.feed_ids[0], 7), big_export_of(api, 0)
    entry = {"export_id": other, "feed_id": api.feed_ids[0], "deliver_through": None}
    state = tap_state(delivered(api.feed_ids[0], mine), pending=[entry])
    return Crafted(state, f"names export {other}, which the state of feed {api.feed_ids[0]} never")


def pending_with_a_forged_proof(api: FakeContactBased) -> Crafted:
    mine, other = api.make_ready_export(api.feed_ids[0], 7), big_export_of(api, 0)
    entry = {"export_id": other, "feed_id": api.feed_ids[0], "proof": "0" * 32}
    state = tap_state(delivered(api.feed_ids[0], mine), pending=[entry])
    return Crafted(state, f"export {other} carries a proof this tap, with this api_key, did not")


def pending_of_another_feed_named_last(api: FakeContactBased) -> Crafted:
    theirs = big_export_of(api, 2)
    entry = {"export_id": theirs, "feed_id": api.feed_ids[0], "deliver_through": None}
    state = tap_state(delivered(api.feed_ids[0], theirs), pending=[entry])
    return Crafted(state, f"but the API says it is an export of feed {api.feed_ids[2]}")


CASES: dict[str, t.Callable[[FakeContactBased], Crafted]] = {
    "another feed's export in flight": another_feeds_export,
    "another feed's export of another window in flight": another_feeds_export_of_another_window,
    "an export of another window in flight": another_window,
    "rows_done past the export's rows": oversized_rows_done,
    "rows_done past the export's pages": oversized_rows_done_counted_in_pages,
    "expected_rows past the export's rows": oversized_expected_rows,
    "a bookmark after the API's today": future_bookmark,
    "an export in flight delivering after the API's today": future_delivery_in_flight,
    "a pending export of a feed not configured": pending_of_an_unconfigured_feed,
    "a pending export of a feed not configured, days to export": (
        pending_of_an_unconfigured_feed_with_days_to_export
    ),
    "a pending export the feed never delivered": pending_the_feed_never_delivered,
    "a pending export with a forged proof": pending_with_a_forged_proof,
    "a pending export of another feed named as the feed's last": pending_of_another_feed_named_last,
}


def spent(api: FakeContactBased) -> dict[str, int]:
    """Requests that create, read or enrich, by kind."""
    return {
        "creates": api.count_requests("POST", endpoints.EXPORTS) + len(api.created_exports),
        "reads": sum(1 for r in api.requests if r.path in READS or r.path.startswith("/files/")),
        "enrichment": sum(api.count_requests("POST", endpoints.enrich(b)) for b in BUNDLE_KEYS),
    }


def one_line(result: SyncResult) -> str:
    assert isinstance(result.error, EXPECTED_FAILURES), repr(result.error)
    line = str(result.error)
    assert "\n" not in line
    assert API_KEY not in line
    return line


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_a_state_the_api_contradicts_is_refused_before_anything_is_spent(
    api: FakeContactBased, make: t.Callable[[FakeContactBased], Crafted]
) -> None:
    crafted = make(api)
    config = make_config(api, feed_ids=api.feed_ids[:1], enrichment_bundles=["emails"])

    result = run_tap(
        config, catalog=selected_catalog(config, STREAMS), state=crafted.state, raise_errors=False
    )

    assert isinstance(result.error, StateMismatchError), repr(result.error)
    line = one_line(result)
    assert line.startswith("The state does not fit the API, so nothing was created or enriched: ")
    assert crafted.fragment in line
    assert spent(api) == {"creates": 0, "reads": 0, "enrichment": 0}
    assert result.records("export_rows") == []
    assert result.records("enrichment") == []


def test_an_export_in_flight_that_is_gone_does_not_spare_the_next_feeds_from_the_check(
    api: FakeContactBased,
) -> None:
    """The first feed's export is gone (planned anew); the second's is another feed's."""
    first, second, third = api.feed_ids
    mine = api.make_ready_export(first, 7, page_size=1000)
    theirs = api.make_ready_export(third, 7, page_size=1000)
    state = tap_state(
        feed_entry(first, in_flight={**in_flight(api, mine), "export_id": "exp_gone"}),
        feed_entry(second, in_flight=in_flight(api, theirs)),
    )
    config = make_config(api, feed_ids=[first, second])

    result = run_tap(
        config, catalog=selected_catalog(config, ["export_rows"]), state=state, raise_errors=False
    )

    assert isinstance(result.error, StateMismatchError), repr(result.error)
    assert f"feed {second}, in_flight names export {theirs}, an export of feed {third}" in (
        one_line(result)
    )
    assert spent(api) == {"creates": 0, "reads": 0, "enrichment": 0}


def test_an_export_in_flight_with_every_row_done_is_finished_not_refused(
    api: FakeContactBased,
) -> None:
    """Killed after its last row was confirmed, before the feed was marked delivered."""
    feed = api.feed_ids[0]
    mine = api.make_ready_export(feed, 7, page_size=1000)
    every_row = api.exports[mine].total_rows
    state = tap_state(feed_entry(feed, in_flight=in_flight(api, mine, rows_done=every_row)))
    config = make_config(api, feed_ids=[feed])

    result = run_tap(config, catalog=selected_catalog(config, ["export_rows"]), state=state)

    assert result.records("export_rows") == []  # every row was delivered by the earlier run
    assert partition(result.last_state, feed)["delivered_through"] == YESTERDAY.isoformat()
    assert "in_flight" not in partition(result.last_state, feed)
    assert spent(api)["creates"] == 0


def test_a_run_of_the_enrichment_stream_alone_checks_the_pending_exports_too(
    api: FakeContactBased,
) -> None:
    """No export stream plans first: the enrichment stream itself refuses the forged entry."""
    crafted = pending_with_a_forged_proof(api)
    config = make_config(api, feed_ids=api.feed_ids[:1], enrichment_bundles=["emails"])

    result = run_tap(
        config,
        catalog=selected_catalog(config, ["enrichment"]),
        state=crafted.state,
        raise_errors=False,
    )

    assert isinstance(result.error, StateMismatchError), repr(result.error)
    assert crafted.fragment in one_line(result)
    assert spent(api)["enrichment"] == 0


def test_a_pending_export_of_the_feeds_own_last_delivery_is_enriched(
    api: FakeContactBased,
) -> None:
    """A state written before the proof names the feed's last export: it is enriched."""
    mine = api.make_ready_export(api.feed_ids[0], 7)
    entry = {"export_id": mine, "feed_id": api.feed_ids[0], "deliver_through": None}
    state = tap_state(delivered(api.feed_ids[0], mine), pending=[entry])
    config = make_config(api, feed_ids=api.feed_ids[:1], enrichment_bundles=["emails"])

    result = run_tap(config, catalog=selected_catalog(config, STREAMS), state=state)

    contacts = {r["contact_id"] for r in api.exports[mine].rows() if r["contact_id"]}
    assert {r["contact_id"] for r in result.records("enrichment")} == contacts
    assert api.created_exports == []
    assert "pending_exports" not in str(result.last_state)


def skipped_pending_export(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, export_id: str, word: str
) -> None:
    """Sync enrichment alone with `export_id` pending; it is skipped, being `word`."""
    entry = {"export_id": export_id, "feed_id": api.feed_ids[0], "deliver_through": None}
    state = tap_state(delivered(api.feed_ids[0], export_id), pending=[entry])
    config = make_config(api, feed_ids=api.feed_ids[:1], enrichment_bundles=["emails"])

    with caplog.at_level(logging.WARNING):
        result = run_tap(config, catalog=selected_catalog(config, ["enrichment"]), state=state)

    assert (
        f"Export {export_id} awaits enrichment but is {word}; its contacts are skipped."
    ) in caplog.text
    assert spent(api) == {"creates": 0, "reads": 0, "enrichment": 0}
    assert "pending_exports" not in str(result.last_state)


# Two tests, not variants of one: the mutation run keeps only one of variants alike.
def test_a_pending_export_gone_from_the_api_is_skipped_with_a_warning(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    skipped_pending_export(api, caplog, "exp_gone", "gone")


def test_a_pending_export_that_failed_is_skipped_with_a_warning(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.fail_exports = True
    failed = api.make_ready_export(api.feed_ids[0], 7)
    api.faults.fail_exports = False
    skipped_pending_export(api, caplog, failed, "failed")


def test_an_export_resumed_while_it_builds_is_checked_once_ready() -> None:
    """Its size is known only then: the feed stops there, before a row is read."""
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=1.0) as api:
        building = api.create_export(ExportOptions(api.feed_ids[0], 7, 1000), by_client=False)
        total = building.plan.total
        record = {
            "export_id": building.export_id,
            "start_date": "2026-11-21",
            "end_date": TODAY.isoformat(),
            "deliver_through": YESTERDAY.isoformat(),
            "rows_done": total + 1,
        }
        state = tap_state(feed_entry(api.feed_ids[0], in_flight=record))
        config = make_config(api, feed_ids=api.feed_ids[:2])

        result = run_tap(config, streams=["export_rows"], state=state, raise_errors=False)

        line = one_line(result)
        assert f"export {building.export_id} of feed {api.feed_ids[0]}" in line
        assert f"rows_done is {total + 1:,} but export {building.export_id} holds" in line
        reads = [r for r in api.requests if r.path in READS]
        assert all((r.body or {}).get("export_id") != building.export_id for r in reads)
        assert {r["feed_id"] for r in result.records("export_rows")} == {api.feed_ids[1]}


def test_a_bookmark_on_the_apis_today_is_accepted(api: FakeContactBased) -> None:
    """Only a day after the API's today is from the future: its today itself is not."""
    state = tap_state(feed_entry(api.feed_ids[0], delivered_through=TODAY.isoformat()))
    config = make_config(api, feed_ids=api.feed_ids[:1])

    result = run_tap(config, streams=["export_rows"], state=state, raise_errors=False)

    assert result.error is None, repr(result.error)
    assert spent(api) == {"creates": 0, "reads": 0, "enrichment": 0}
    assert TODAY.isoformat() in str(result.last_state)
