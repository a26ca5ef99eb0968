"""The plan of a run, each decision proven by what it logs, reports or leaves in the state.

The settings checks against the organization (unknown feeds named first, the lookback of a
fresh feed against its cap), the complete-day window of a new feed and of one not run for
longer than its cap, the reuse of an identical export at planning, and the report of
`plan_only`, line by line and in the cost receipt.
"""

from __future__ import annotations

import datetime
import logging
import typing as t
from dataclasses import dataclass

import pytest

from tap_contactbased import endpoints
from tap_contactbased.run import feed_cap
from tap_contactbased.summary import ExportOptions
from tests.conftest import TODAY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api import exports as fake_exports
from tests.run_checks import (
    cost_receipt,
    feed_entry,
    in_flight,
    one_clear_line,
    partition,
    tap_state,
)
from tests.singer_run import SyncResult, run_tap

UNKNOWN_FEED = "00000000-0000-4000-8000-000000000000"
SKIPPED = "cannot be exported any more and are skipped"
PAGE_SIZE = 1000


def days(first: datetime.date, last: datetime.date) -> set[str]:
    """Every day from `first` to `last`, as records carry them."""
    count = (last - first).days + 1
    return {(first + datetime.timedelta(days=n)).isoformat() for n in range(count)}


def signal_days(result: SyncResult) -> set[str]:
    return {r["signal_date"] for r in result.records("export_rows")}


def count_requests(api: FakeContactBased) -> int:
    return api.count_requests("POST", endpoints.EXPORTS_COUNT)


# The settings against the organization


def test_unknown_feeds_are_named_first_with_the_feeds_the_organization_has(
    api: FakeContactBased,
) -> None:
    config = make_config(api, feed_ids=[api.feed_ids[0], UNKNOWN_FEED], export_bundles=["auto"])

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    one_clear_line(result.error)
    known = ", ".join(sorted(api.feed_ids))
    assert str(result.error).startswith(
        "The settings do not fit this organization, so nothing was created: "
        f"feed_ids contains {UNKNOWN_FEED}, not a feed of this organization "
        f"(known feeds: {known}); export_bundles asks for auto"
    )
    assert api.created_exports == []


def test_a_fresh_feed_may_look_back_exactly_its_max_lookback_days(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.feeds[0]["max_lookback_days"] = 3
    config = make_config(api, feed_ids=api.feed_ids[:1], lookback_days=3)

    with caplog.at_level(logging.INFO):
        result = run_tap(config, streams=["export_rows"])

    (export_id,) = api.created_exports
    assert by_key(result.records("export_rows")) == delivered_rows(api, export_id, YESTERDAY)
    assert signal_days(result) == days(TODAY - datetime.timedelta(days=2), YESTERDAY)
    assert SKIPPED not in caplog.text
    assert "would reserve" not in caplog.text  # every cost was known: no warning either


def test_a_feed_not_run_for_longer_than_its_cap_delivers_its_last_days_and_names_the_rest(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    feed = api.feed_ids[0]
    api.feeds[0]["max_lookback_days"] = 5
    last_run = TODAY - datetime.timedelta(days=20)
    state = tap_state(feed_entry(feed, delivered_through=last_run.isoformat()))
    # Above the cap, which refuses only a fresh feed: this one starts at its bookmark.
    config = make_config(api, feed_ids=[feed], lookback_days=10)

    with caplog.at_level(logging.WARNING):
        result = run_tap(config, streams=["export_rows"], state=state)

    first = TODAY - datetime.timedelta(days=4)
    assert (
        f"Feed {feed} was last delivered through {last_run}, more than its max_lookback_days "
        f"(5) ago: 15 day(s) before {first} {SKIPPED}." in caplog.text
    )
    (export_id,) = api.created_exports
    assert by_key(result.records("export_rows")) == delivered_rows(api, export_id, YESTERDAY)
    assert signal_days(result) == days(first, YESTERDAY)
    assert partition(result.last_state, feed)["delivered_through"] == YESTERDAY.isoformat()


def test_a_feed_capped_at_one_day_is_capped_and_a_cap_of_zero_is_no_cap(
    api: FakeContactBased,
) -> None:
    api.feeds[0]["max_lookback_days"] = 1
    config = make_config(api, feed_ids=api.feed_ids[:1], lookback_days=2)

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    one_clear_line(result.error)
    assert (
        f"lookback_days is 2 but feed {api.feed_ids[0]} allows at most 1 (max_lookback_days)"
        in str(result.error)
    )
    assert api.created_exports == []
    assert feed_cap({"max_lookback_days": 0}) is None  # a cap of no day caps nothing


# A new feed with no complete day to export yet


def test_a_new_feed_with_no_complete_day_starts_its_bookmark_at_yesterday(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    feed = api.feed_ids[0]
    config = make_config(api, feed_ids=[feed], lookback_days=1)  # today only: not over

    planned = run_tap({**config, "plan_only": True}, streams=["export_rows"])
    assert "delivered_through" not in partition(planned.last_state, feed)  # plan_only writes none

    with caplog.at_level(logging.INFO):
        first = run_tap(config, streams=["export_rows"])

    assert api.created_exports == []
    assert first.records("export_rows") == []
    assert (
        f"Feed {feed} is delivered through {YESTERDAY}: no complete day to export before {TODAY}."
        in caplog.text
    )
    assert partition(first.last_state, feed)["delivered_through"] == YESTERDAY.isoformat()

    api.today = TODAY + datetime.timedelta(days=1)
    second = run_tap(config, streams=["export_rows"], state=first.last_state)

    (export_id,) = api.created_exports
    assert by_key(second.records("export_rows")) == delivered_rows(api, export_id, TODAY)
    assert signal_days(second) == {TODAY.isoformat()}  # the day that completed, exactly


# Reuse at planning, and the report of plan_only


@dataclass(frozen=True)
class ThreeKinds:
    """A config and a state whose feeds are to resume, to reuse and to create."""

    config: dict[str, t.Any]
    state: dict[str, t.Any]
    to_resume: str  # the export the state has in flight
    to_reuse: str  # an identical export on the API


@pytest.fixture
def three_kinds(api: FakeContactBased) -> ThreeKinds:
    resume, reuse, create = api.feed_ids
    to_resume = api.make_ready_export(**ExportOptions(resume, 7, PAGE_SIZE).body())
    to_reuse = api.make_ready_export(**ExportOptions(reuse, 7, PAGE_SIZE).body())
    state = tap_state(
        feed_entry(resume, in_flight=in_flight(api, to_resume)),
        feed_entry(reuse),
        feed_entry(create),
    )
    # A cap far above the one export's cost: it refuses only a cost the count does not give.
    config = make_config(api, feed_ids=api.feed_ids, max_records_per_run=10**9)
    return ThreeKinds(config, state, to_resume, to_reuse)


def test_plan_only_reports_each_feed_to_resume_to_reuse_or_to_create(
    api: FakeContactBased, three_kinds: ThreeKinds, caplog: pytest.LogCaptureFixture
) -> None:
    to_resume, to_reuse = three_kinds.to_resume, three_kinds.to_reuse
    resume, reuse, create = api.feed_ids
    start, end = (TODAY - datetime.timedelta(days=6)).isoformat(), TODAY.isoformat()
    rows = api.plan(fake_exports.ExportOptions(create, 7, PAGE_SIZE)).total

    with caplog.at_level(logging.INFO):
        result = run_tap(
            {**three_kinds.config, "plan_only": True},
            streams=["export_rows"],
            state=three_kinds.state,
        )

    assert result.error is None
    assert api.created_exports == []
    plan = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Plan: ")]
    assert plan == [
        f"Plan: would resume export {to_resume} of feed {resume} ({start}..{end}); "
        "nothing to spend.",
        f"Plan: would reuse export {to_reuse} of feed {reuse}; nothing to spend.",
        f"Plan: would export feed {create} for {start}..{end}: {rows:,} rows, reserving "
        f"{rows:,} records credits. Nothing was created (plan_only).",
    ]
    logged = cost_receipt(caplog)
    assert logged["exports_planned"] == [
        {"feed_id": resume, "resume_export_id": to_resume},
        {"feed_id": reuse, "start_date": start, "end_date": end, "reuse_export_id": to_reuse},
        {
            "feed_id": create,
            "start_date": start,
            "end_date": end,
            "total_rows": rows,
            "records_required": rows,
        },
    ]
    assert logged["reused"] == []
    # Nothing taken over: the state is the one handed in.
    assert partition(result.last_state, resume)["in_flight"] == in_flight(api, to_resume)
    assert "in_flight" not in partition(result.last_state, reuse)


def test_a_run_resumes_and_reuses_at_planning_and_lists_both_in_its_receipt(
    api: FakeContactBased, three_kinds: ThreeKinds, caplog: pytest.LogCaptureFixture
) -> None:
    to_resume, to_reuse = three_kinds.to_resume, three_kinds.to_reuse
    reuse, create = api.feed_ids[1:]
    start = TODAY - datetime.timedelta(days=6)

    with caplog.at_level(logging.INFO):
        result = run_tap(three_kinds.config, streams=["export_rows"], state=three_kinds.state)

    (created,) = api.created_exports
    assert api.exports[created].feed_id == create
    assert count_requests(api) == 1  # the reused export was taken at planning, not counted
    assert (
        f"Reusing export {to_reuse} of feed {reuse} ({start}..{TODAY}) (ready) instead of "
        "creating one."
    ) in caplog.text
    assert "appeared since the run was planned" not in caplog.text
    assert not any(r.getMessage().startswith("Plan: ") for r in caplog.records)
    assert "would reserve; they are created without that check" not in caplog.text
    logged = cost_receipt(caplog)
    assert logged["reused"] == [to_resume, to_reuse]
    assert logged["exports_planned"] == []
    expected = {}
    for export_id in (to_resume, to_reuse, created):
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert by_key(result.records("export_rows")) == expected
