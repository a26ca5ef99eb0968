"""The guards of the wait for a build, each proven alone, naming the one that acted.

An unknown status is an error wherever the tap meets the export: named in the state (with
summaries that do not echo the options, so that find-or-create cannot meet it instead) and
found on the API (with no state, so that resume cannot). The overall deadline ends a build
that still progresses; the stall deadline ends one that does not; without build_progress
only the overall deadline applies. The unit tests of `test_job.py` prove the same deadlines
on a virtual clock; these prove them through a run: the message, and the state left behind.
"""

from __future__ import annotations

import datetime
import typing as t
from collections.abc import Iterator

import pytest

from tap_contactbased import endpoints
from tests.conftest import API_KEY, TODAY, YESTERDAY, make_config, shorten_export_waits
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.run_checks import listed, one_clear_line, partition
from tests.singer_run import SyncResult, run_tap

LOOKBACK_DAYS = 7
PAGE_SIZE = 1000


@pytest.fixture
def slow_api() -> Iterator[FakeContactBased]:
    """A local API whose builds take a second."""
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=1.0) as server:
        yield server


def run_one_feed(
    api: FakeContactBased, state: dict[str, t.Any] | None = None, **overrides: t.Any
) -> SyncResult:
    config = make_config(api, feed_ids=api.feed_ids[:1], lookback_days=LOOKBACK_DAYS)
    config.update(overrides)
    return run_tap(config, streams=["export_rows"], state=state, raise_errors=False)


def creates(api: FakeContactBased) -> int:
    return api.count_requests("POST", endpoints.EXPORTS)


def stopped_on(result: SyncResult, api: FakeContactBased, export_id: str, fired: str) -> None:
    """The run stopped on `fired`, delivered nothing and keeps the export in flight."""
    one_clear_line(result.error)
    assert fired in str(result.error)
    assert result.records("export_rows") == []
    bookmark = partition(result.last_state, api.feed_ids[0])
    assert bookmark["in_flight"]["export_id"] == export_id
    assert "delivered_through" not in bookmark


@pytest.fixture
def archived(api: FakeContactBased) -> str:
    """An export of the run's feed, window and options, in a status the tap does not know."""
    api.faults.unknown_status = "archived"
    return api.make_ready_export(api.feed_ids[0], LOOKBACK_DAYS, page_size=PAGE_SIZE)


def test_an_unknown_status_named_in_the_state_stops_the_run_rather_than_pay_again(
    api: FakeContactBased, archived: str
) -> None:
    api.faults.drift = {"summary": {"lookback_days": None}}  # find-or-create cannot find it
    flight = {
        "export_id": archived,
        "start_date": (TODAY - datetime.timedelta(days=LOOKBACK_DAYS - 1)).isoformat(),
        "end_date": TODAY.isoformat(),
        "deliver_through": YESTERDAY.isoformat(),
        "rows_done": 0,
    }
    entry = {"context": {"feed_id": api.feed_ids[0]}, "in_flight": flight}
    state = {"bookmarks": {"export_rows": {"partitions": [entry]}}}

    result = run_one_feed(api, state)

    stopped_on(result, api, archived, "reports status 'archived'")
    assert creates(api) == 0


def test_an_unknown_status_found_on_the_api_stops_the_run_rather_than_pay_again(
    api: FakeContactBased, archived: str
) -> None:
    result = run_one_feed(api)  # no state: only find-or-create can meet the export

    stopped_on(result, api, archived, "reports status 'archived'")
    assert creates(api) == 0


def test_the_overall_deadline_ends_a_build_that_still_progresses(
    slow_api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    shorten_export_waits(monkeypatch, timeout_seconds=0.3, stall_timeout_seconds=10)

    result = run_one_feed(slow_api)

    export_id = slow_api.created_exports[0]
    stopped_on(result, slow_api, export_id, "was not ready after 0.3 s (export_timeout_seconds)")
    assert slow_api.exports[export_id].status == "building"  # healthy, and given up
    assert "export_stall_timeout_seconds" not in str(result.error)


def test_the_stall_deadline_ends_a_build_that_stopped_progressing(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.faults.stall_exports = True
    shorten_export_waits(monkeypatch, timeout_seconds=5, stall_timeout_seconds=0.3)

    result = run_one_feed(api)

    export_id = api.created_exports[0]
    stopped_on(result, api, export_id, "made no progress for 0.3 s (export_stall_timeout_seconds)")
    assert "export_timeout_seconds)" not in str(result.error)


def test_without_build_progress_a_slow_build_is_waited_for_until_the_overall_deadline(
    slow_api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_api.faults.drift = {"summary": {"build_progress": None}}
    shorten_export_waits(
        monkeypatch, timeout_seconds=30, stall_timeout_seconds=0.2, max_interval_seconds=0.05
    )

    result = run_one_feed(slow_api)

    assert result.error is None
    export_id = slow_api.created_exports[0]
    assert "build_progress" not in listed(slow_api, export_id)
    lists = [r for r in slow_api.requests if r.path == endpoints.EXPORTS_LIST]
    assert len(lists) > 3  # it polled, well past the stall timeout, while the build went on
    expected = delivered_rows(slow_api, export_id, YESTERDAY)
    assert by_key(result.records("export_rows")) == expected
