"""The two guards that keep the API's unfinished today out of a delivery, each proven alone.

The complete-day window (`windows.plan_window`) plans delivery through yesterday; the clamp
on the export's own end (`ExportJob._clamp_delivery`) delivers through the day before the
day the export ends. Either would do when the API's today is the tap's; each test takes the
other one out of play (no `end_date` in the summaries; no `end_date` in the search, so the
window is planned on this machine's date while the API's clock is a day behind).
"""

from __future__ import annotations

import datetime
import logging

import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.run_checks import partition
from tests.singer_run import SyncResult, run_tap

CLAMPED = "ends before the window planned for it"


def run_one_feed(api: FakeContactBased) -> SyncResult:
    return run_tap(make_config(api, feed_ids=api.feed_ids[:1]), streams=["export_rows"])


def delivered_through(api: FakeContactBased, result: SyncResult, day: datetime.date) -> None:
    """The run delivered every row up to `day` and none after, and says so in its state."""
    export_id = api.created_exports[0]
    records = result.records("export_rows")
    assert by_key(records) == delivered_rows(api, export_id, day)
    assert len(records) == len(delivered_rows(api, export_id, day))
    assert max(r["signal_date"] for r in records) == day.isoformat()
    bookmark = partition(result.last_state, api.feed_ids[0])
    assert bookmark["delivered_through"] == day.isoformat()
    assert "in_flight" not in bookmark


def test_the_complete_day_window_alone_keeps_the_apis_today_out(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.drift = {"summary": {"end_date": None}}  # nothing for the clamp to act on

    with caplog.at_level(logging.WARNING):
        result = run_one_feed(api)

    served = api.exports[api.created_exports[0]].rows()
    assert any(r["signal_date"] == TODAY.isoformat() for r in served)
    delivered_through(api, result, YESTERDAY)
    assert CLAMPED not in caplog.text  # the window did it, not the clamp


def test_the_clamp_alone_keeps_the_apis_today_out_when_the_window_was_planned_on_another_day(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # This machine's UTC date is a day (or more) after the API's: without the search's
    # dates the tap plans on its own, so the window would deliver the API's today.
    machine_today = datetime.datetime.now(datetime.timezone.utc).date()
    api_today = machine_today - datetime.timedelta(days=1)
    api_yesterday = api_today - datetime.timedelta(days=1)
    with FakeContactBased(api_key=API_KEY, today=api_today, build_seconds=0.05) as api:
        api.faults.drift = {"search": {"end_date": None, "start_date": None}}

        with caplog.at_level(logging.WARNING):
            result = run_one_feed(api)

        assert "taking today as this machine's UTC date" in caplog.text
        served = api.exports[api.created_exports[0]].rows()
        assert any(r["signal_date"] == api_today.isoformat() for r in served)
        delivered_through(api, result, api_yesterday)
        assert f"{CLAMPED}: it delivers through {api_yesterday}, not " in caplog.text
