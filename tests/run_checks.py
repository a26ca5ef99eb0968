"""What a run against the local API left behind: its one-line error, state, exports."""

from __future__ import annotations

import typing as t

import pytest
import requests

from tap_contactbased import endpoints
from tap_contactbased.cli import EXPECTED_FAILURES
from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.fake_api import FakeContactBased


def new_api() -> FakeContactBased:
    """A started local API whose feeds fill two pages of 1,000 in a week, built at once."""
    return FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, rows_per_day=(150, 250)
    ).start()


def one_clear_line(error: BaseException | None) -> None:
    """The run stopped with an error the command prints as one line, without the key."""
    assert isinstance(error, EXPECTED_FAILURES), repr(error)
    text = str(error)
    assert text
    assert "\n" not in text
    assert API_KEY not in text


def partition(state: dict[str, t.Any] | None, feed_id: str) -> dict[str, t.Any]:
    """A feed's entry in the export_rows state (empty when it has none)."""
    partitions = (state or {}).get("bookmarks", {}).get("export_rows", {}).get("partitions", [])
    return next((p for p in partitions if p["context"]["feed_id"] == feed_id), {})


def listed(api: FakeContactBased, export_id: str) -> dict[str, t.Any]:
    """The export's summary as the API lists it now."""
    answer = requests.post(
        api.url + endpoints.EXPORTS_LIST,
        json={"export_ids": [export_id]},
        headers={"X-API-Key": API_KEY},
        timeout=10,
    ).json()
    return dict(answer["items"][0])


def feed_entry(feed_id: str, **entry: t.Any) -> dict[str, t.Any]:
    """A feed's entry in the export_rows state, as a state handed to the tap holds it."""
    return {"context": {"feed_id": feed_id}, **entry}


def tap_state(
    *partitions: dict[str, t.Any], pending: list[dict[str, t.Any]] | None = None
) -> dict[str, t.Any]:
    """A state of the tap with these export_rows entries (and enrichment awaiting)."""
    bookmarks: dict[str, t.Any] = {"export_rows": {"partitions": list(partitions)}}
    if pending is not None:
        bookmarks["enrichment"] = {"pending_exports": pending}
    return {"bookmarks": bookmarks}


def in_flight(api: FakeContactBased, export_id: str, **changes: t.Any) -> dict[str, t.Any]:
    """The in-flight record the tap writes for a ready export, with `changes`."""
    summary = api.exports[export_id].summary()
    record = {
        "export_id": export_id,
        "start_date": summary["start_date"],
        "end_date": summary["end_date"],
        "deliver_through": YESTERDAY.isoformat(),
        "rows_done": 0,
        "expected_rows": summary["total_rows"],
        "page_size": 1000,
    }
    return {**record, **changes}


def cost_receipt(caplog: pytest.LogCaptureFixture) -> dict[str, t.Any]:
    """The cost receipt a run logged, as its structured event carries it."""
    line = next(r for r in caplog.records if r.getMessage().startswith("Cost receipt"))
    return dict(line.__dict__["cost_receipt"])
