"""Each count check of the readers proven on its own, naming the check that fired.

In each test only that check stands between the run and a delivery with rows missing. The
local API leaves out every count but the one under test (contract drift), so that no
neighbouring check can stop the run in its place. Where one check always fires before
another, the test proves the first with a fault that reading again mends: a broken check
then lets the neighbour fail a run that should have delivered everything.

Where a check cannot fire alone, no test pretends it does: in pages mode the count taken
before creation sets the fewest rows of each page, so a page short of it is read again
(`page_rows`) before the end-of-data check could see the rows missing.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Callable, Iterator

import pytest

from tap_contactbased import endpoints, retry
from tests.conftest import YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api.exports import ExportOptions
from tests.fake_api.faults import Hit
from tests.run_checks import new_api, one_clear_line, partition
from tests.singer_run import SyncResult, run_tap

PAGE_SIZE = 1000
LOOKBACK_DAYS = 7
# The counts a run can learn of an export; each case leaves all but one out.
DriftKnob = dict[str, dict[str, str | None]]
NO_COUNT_BEFORE: DriftKnob = {"count": {"total_rows": None}}  # records_required still prices
ONLY_TOTAL_ROWS: DriftKnob = {"summary": {"total_pages": None}, **NO_COUNT_BEFORE}
ONLY_TOTAL_PAGES: DriftKnob = {"summary": {"total_rows": None}, **NO_COUNT_BEFORE}
ONLY_COUNT_BEFORE: DriftKnob = {"summary": {"total_rows": None, "total_pages": None}}
FIRED_TOTAL_ROWS = "but total_rows says"
FIRED_TOTAL_PAGES = "but total_pages says"
FIRED_COUNT_BEFORE = "but the count before the export was created said"
FIRED = (FIRED_TOTAL_ROWS, FIRED_TOTAL_PAGES, FIRED_COUNT_BEFORE)


@pytest.fixture
def api() -> Iterator[FakeContactBased]:
    """The local API, its feeds a little over one page of 1,000 rows a week."""
    server = new_api()
    yield server
    server.stop()


def config_of(api: FakeContactBased, read_mode: str) -> dict[str, t.Any]:
    return make_config(
        api,
        feed_ids=api.feed_ids[:1],
        read_mode=read_mode,
        lookback_days=LOOKBACK_DAYS,
        page_size=PAGE_SIZE,
    )


def rows_to_export(api: FakeContactBased) -> int:
    """The rows the run's export will hold, as the API counts them before it exists."""
    total = api.plan(ExportOptions(api.feed_ids[0], LOOKBACK_DAYS, PAGE_SIZE)).total
    assert PAGE_SIZE < total < 2 * PAGE_SIZE  # two pages, the second one partly filled
    return total


def page_reads(api: FakeContactBased, page: int) -> list[int]:
    """The statuses of the requests for one page, in order."""
    return [
        r.status
        for r in api.requests
        if r.path == endpoints.EXPORTS_PAGE and (r.body or {}).get("page") == page
    ]


def downloads(api: FakeContactBased) -> int:
    return sum(1 for r in api.requests if r.path.startswith("/files/"))


def assert_stopped_by(result: SyncResult, api: FakeContactBased, fired: str) -> str:
    """The run stopped on `fired` and no other count check, leaving its export in flight."""
    one_clear_line(result.error)
    message = str(result.error)
    assert fired in message
    assert [other for other in FIRED if other != fired and other in message] == []
    assert len(api.created_exports) == 1  # stopped, not replaced
    export_id = api.created_exports[0]
    bookmark = partition(result.last_state, api.feed_ids[0])
    assert "delivered_through" not in bookmark
    assert bookmark["in_flight"]["export_id"] == export_id
    assert bookmark["in_flight"]["rows_done"] < api.exports[export_id].total_rows
    return message


def last_page_rows(total: int) -> int:
    return total - PAGE_SIZE


@pytest.mark.parametrize(
    ("drift", "rows_missing", "fired"),
    [
        pytest.param(ONLY_TOTAL_ROWS, lambda total: 3, FIRED_TOTAL_ROWS, id="total_rows"),
        # A whole page missing: fewer rows alone would leave the number of pages right.
        pytest.param(ONLY_TOTAL_PAGES, last_page_rows, FIRED_TOTAL_PAGES, id="total_pages"),
        pytest.param(ONLY_COUNT_BEFORE, lambda total: 3, FIRED_COUNT_BEFORE, id="count before"),
    ],
)
def test_a_csv_that_ends_early_is_stopped_by_the_one_count_given(
    api: FakeContactBased,
    drift: DriftKnob,
    rows_missing: Callable[[int], int],
    fired: str,
) -> None:
    api.faults.drift = drift
    api.faults.csv_rows_missing = rows_missing(rows_to_export(api))

    result = run_tap(config_of(api, "csv"), streams=["export_rows"], raise_errors=False)

    message = assert_stopped_by(result, api, fired)
    assert f"({retry.MAX_TRIES} tries in " in message  # read again before giving up
    assert downloads(api) == retry.MAX_TRIES  # and every download ended early


def test_pages_that_end_before_total_pages_says_are_stopped_by_total_pages(
    api: FakeContactBased,
) -> None:
    api.faults.drift = ONLY_TOTAL_PAGES
    # The second page answers, empty: nothing but total_pages says it should hold rows.
    api.faults.page_rows_missing = last_page_rows(rows_to_export(api))

    result = run_tap(config_of(api, "pages"), streams=["export_rows"], raise_errors=False)

    message = assert_stopped_by(result, api, FIRED_TOTAL_PAGES)
    assert "the data ended after 1,000 rows (1 pages of 1,000) but total_pages says 2" in message
    assert page_reads(api, 2) == [200]


@pytest.mark.parametrize(
    "drift",
    [
        pytest.param(NO_COUNT_BEFORE, id="total_rows given"),
        pytest.param(ONLY_TOTAL_PAGES, id="total_rows not given"),
    ],
)
def test_pages_past_the_last_one_total_pages_names_are_read_and_the_disagreement_stops_the_run(
    api: FakeContactBased, drift: DriftKnob
) -> None:
    # total_pages names one page fewer than the export holds. The reader does not take it
    # at its word: past a full last page it asks for the next one, finds rows there, and the
    # total_pages check stops the feed instead of an exit 0 without the second page.
    api.faults.drift = drift
    api.faults.new_fields = {"total_pages": 1}
    total = rows_to_export(api)

    result = run_tap(config_of(api, "pages"), streams=["export_rows"], raise_errors=False)

    one_clear_line(result.error)
    message = str(result.error)
    assert f"the data ended after {total:,} rows (2 pages of 1,000) but total_pages says 1" in (
        message
    )
    assert [other for other in FIRED if other in message] == [FIRED_TOTAL_PAGES]
    assert page_reads(api, 2) == [200]
    export_id = api.created_exports[0]
    # every row of the complete days read and emitted, none dropped
    assert by_key(result.records("export_rows")) == delivered_rows(api, export_id, YESTERDAY)
    bookmark = partition(result.last_state, api.feed_ids[0])
    assert "delivered_through" not in bookmark
    assert bookmark["in_flight"]["export_id"] == api.created_exports[0]


def test_a_page_longer_than_a_page_stops_the_run_before_its_rows_are_numbered_twice(
    api: FakeContactBased,
) -> None:
    # The summaries say 999 rows a page; the pages hold 1,000. Read on, page 2 would number
    # its rows from 1,000 again, and an upsert would keep one of the two rows numbered 1,000.
    api.faults.drift = ONLY_COUNT_BEFORE
    api.faults.new_fields = {"page_size": PAGE_SIZE - 1}

    result = run_tap(config_of(api, "pages"), streams=["export_rows"], raise_errors=False)

    message = assert_stopped_by(result, api, "more than the 999 the counts allow")
    assert "page 1 holds 1,000 rows" in message
    assert result.records("export_rows") == []
    assert page_reads(api, 2) == []


@pytest.mark.parametrize(
    "drift",
    [
        pytest.param({}, id="total_rows"),
        pytest.param(ONLY_TOTAL_PAGES, id="total_pages"),
        pytest.param(ONLY_COUNT_BEFORE, id="count before"),
    ],
)
def test_a_short_page_is_read_again_whichever_count_says_it_is_short(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, drift: DriftKnob
) -> None:
    api.faults.drift = drift
    api.faults.short_pages = 1  # the first read of page 1 lacks its last row

    with caplog.at_level(logging.WARNING):
        result = run_tap(config_of(api, "pages"), streams=["export_rows"])

    assert api.faults.short_pages == 0
    assert page_reads(api, 1) == [200, 200]
    assert "the page held 999 rows, 1,000 expected" in caplog.text
    expected = delivered_rows(api, api.created_exports[0], YESTERDAY)
    assert by_key(result.records("export_rows")) == expected
    assert len(result.records("export_rows")) == len(expected)
    bookmark = partition(result.last_state, api.feed_ids[0])
    assert bookmark["delivered_through"] == YESTERDAY.isoformat()


@pytest.mark.parametrize(
    ("read_mode", "endpoint"),
    [("csv", endpoints.EXPORTS_DOWNLOAD_URL), ("pages", endpoints.EXPORTS_PAGE)],
)
def test_a_read_refused_with_a_4xx_is_sent_once_and_stops_only_its_feed(
    api: FakeContactBased, read_mode: str, endpoint: str
) -> None:
    # Reads of two feeds; the first request for a part of an export is refused with a 403,
    # which no retry mends (unlike 404 and 409 on a page, read again first).
    aimed = f"POST {endpoint}"
    api.faults.aimed = {aimed: ["403"]}
    feeds = api.feed_ids[:2]
    config = make_config(
        api, feed_ids=feeds, read_mode=read_mode, lookback_days=LOOKBACK_DAYS, page_size=PAGE_SIZE
    )

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    assert api.fault_engine.hits == [Hit(aimed, "403")]
    one_clear_line(result.error)
    text = str(result.error)
    assert text.startswith("1 feed(s) did not finish: ")
    assert "403" in text
    refused = next(feed for feed in feeds if feed in text)
    healthy = next(feed for feed in feeds if feed != refused)
    export_ids = {api.exports[e].feed_id: e for e in api.created_exports}
    asked = [
        r
        for r in api.requests
        if r.path == endpoint and (r.body or {}).get("export_id") == export_ids[refused]
    ]
    assert len(asked) == 1  # not retried
    records = result.records("export_rows")
    assert {r["feed_id"] for r in records} == {healthy}
    assert by_key(records) == delivered_rows(api, export_ids[healthy], YESTERDAY)
    assert partition(result.last_state, healthy)["delivered_through"] == YESTERDAY.isoformat()
    assert partition(result.last_state, refused).get("delivered_through") != YESTERDAY.isoformat()
