"""A read of a ready export is tried under ONE retry budget, never loops within loops.

Against the local API with faults that never heal, each test counts the requests the run
sent for one page, or for the CSV: a page is sent at most `retry.MAX_TRIES` times whatever
fails it (the request, a short or missing page, a cut body), its prefetch being its first
try; a CSV is downloaded, each time through a new signed URL, at most as often, an expired
URL's renewal included. With an API that dies mid-read, the run gives up in one line at
`retry_max_seconds` after the first failure in both read modes: measured on a virtual
clock (`tests.clocks.VirtualClock`), which makes the waits exact and free. Each test also
proves that the fault struck where it was aimed and names the check that stopped the run.
"""

from __future__ import annotations

import logging
import re
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest

from tap_contactbased import endpoints, retry
from tap_contactbased.errors import ExportError, TransientApiError
from tests.clocks import VirtualClock, virtual_retry_clock
from tests.conftest import API_KEY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api.faults import Hit
from tests.run_checks import new_api, one_clear_line
from tests.singer_run import SyncResult, run_command, run_tap

PAGE_SIZE = 1000
PAGE = endpoints.EXPORTS_PAGE
DOWNLOAD_URL = endpoints.EXPORTS_DOWNLOAD_URL
RETRY_LINE = re.compile(r"Reading (.+) again in [\d.]+ s \(try (\d+) of (\d+)\)")
# What each fault of the failing page makes the run say, and the class that says it: a
# request that keeps failing stops the run, a ready export's page that cannot be read whole
# stops its feed.
PAGE_FAULTS = {
    "503": (TransientApiError, "503"),
    "cut": (TransientApiError, "the connection dropped in the middle of the response"),
    "404": (ExportError, "although the export is ready"),
    "short": (ExportError, "the page held "),
}


@pytest.fixture
def api() -> Iterator[FakeContactBased]:
    """The local API, its feeds filling two pages of 1,000 a week."""
    server = new_api()
    yield server
    server.stop()


def config_of(
    api: FakeContactBased, read_mode: str, feeds: int = 1, **more: t.Any
) -> dict[str, t.Any]:
    return make_config(
        api, feed_ids=api.feed_ids[:feeds], read_mode=read_mode, page_size=PAGE_SIZE, **more
    )


def page_sends(api: FakeContactBased, export_id: str, page: int) -> int:
    """The requests for one page of one export the API received (dropped ones included)."""
    return sum(
        1
        for r in api.requests
        if r.path == PAGE and r.body == {"export_id": export_id, "page": page}
    )


def retry_lines(caplog: pytest.LogCaptureFixture, what: str) -> list[tuple[int, int]]:
    """(try, of) of each retry WARNING about `what` ("page 2 of export ...")."""
    found = [RETRY_LINE.search(r.getMessage()) for r in caplog.records]
    return [(int(m[2]), int(m[3])) for m in found if m is not None and m[1].startswith(what)]


def downloads(api: FakeContactBased) -> int:
    return sum(1 for r in api.requests if r.path.startswith("/files/"))


def in_flight(result: SyncResult, export_id: str) -> dict[str, t.Any]:
    """The export's entry in the last state: still in flight, its window undelivered."""
    partitions = (result.last_state or {})["bookmarks"]["export_rows"]["partitions"]
    bookmark = next(p for p in partitions if p.get("in_flight", {}).get("export_id") == export_id)
    assert "delivered_through" not in bookmark
    flight: dict[str, t.Any] = bookmark["in_flight"]
    return flight


@pytest.mark.parametrize("fault", list(PAGE_FAULTS))
def test_one_failing_page_is_sent_at_most_the_policys_tries(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    api.faults.failing_page = (2, fault)
    caplog.set_level(logging.WARNING)

    result = run_tap(config_of(api, "pages", feeds=2), streams=["export_rows"], raise_errors=False)

    read = [e for e in api.created_exports if page_sends(api, e, 2)]
    assert read
    for export_id in read:
        # Once each try, the first of them the prefetch: never a round of retries per try.
        assert page_sends(api, export_id, 1) == 1
        assert page_sends(api, export_id, 2) == retry.MAX_TRIES
        expected = [(n, retry.MAX_TRIES) for n in range(2, retry.MAX_TRIES + 1)]
        assert retry_lines(caplog, f"page 2 of export {export_id}") == expected
        assert in_flight(result, export_id)["rows_done"] == PAGE_SIZE  # page 1, confirmed
    # The fault struck page 2 and nothing else, once a send.
    hit = Hit(f"POST {PAGE}", f"page 2: {fault}")
    assert api.fault_engine.hits == [hit] * (retry.MAX_TRIES * len(read))
    error_class, fired = PAGE_FAULTS[fault]
    one_clear_line(result.error)
    message = str(result.error)
    if error_class is ExportError:  # each feed stops on its own: the run names both
        assert read == api.created_exports
        assert "2 feed(s) did not finish" in message
    else:  # the run stops at the page of the export read first
        assert isinstance(result.error, TransientApiError)
        assert len(read) == 1
    assert f"Could not read page 2 of export {read[0]}" in message
    assert fired in message
    assert f"({retry.MAX_TRIES} tries in " in message
    if fault == "short":  # the last row left out of page 2, whose rows the counts know
        rows = api.exports[read[0]].total_rows - PAGE_SIZE
        assert f"the page held {rows - 1:,} rows, {rows:,} expected" in message


def test_a_failed_prefetch_is_the_pages_first_try_and_says_so(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    # Page 1 is served ("hold" of 0 s); the next page request, page 2's prefetch, gets a 503.
    api.faults.aimed = {f"POST {PAGE}": ["hold", "503"]}
    api.faults.hold_seconds = 0.0
    caplog.set_level(logging.WARNING)

    result = run_tap(config_of(api, "pages"), streams=["export_rows"])

    export_id = api.created_exports[0]
    assert api.fault_engine.hits == [Hit(f"POST {PAGE}", "hold"), Hit(f"POST {PAGE}", "503")]
    assert [r.status for r in api.requests if r.body == {"export_id": export_id, "page": 2}] == [
        503,
        200,
    ]
    # Its failure is logged as the first of page 2's tries, not dropped and fetched anew.
    assert retry_lines(caplog, f"page 2 of export {export_id}") == [(2, retry.MAX_TRIES)]
    assert by_key(result.records("export_rows")) == delivered_rows(api, export_id, YESTERDAY)


def test_a_csv_cut_at_the_same_row_is_read_at_most_the_policys_tries(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.csv_cut_at_row = PAGE_SIZE + 500
    caplog.set_level(logging.WARNING)

    result = run_tap(config_of(api, "csv"), streams=["export_rows"], raise_errors=False)

    one_clear_line(result.error)
    assert isinstance(result.error, ExportError)
    export_id = api.created_exports[0]
    message = str(result.error)
    assert f"Could not read the CSV of export {export_id}" in message
    assert "the connection dropped while the body was read" in message
    assert f"({retry.MAX_TRIES} tries in " in message
    # One budget: each try one new URL and one download, as many as the policy's tries.
    assert downloads(api) == retry.MAX_TRIES
    assert api.count_requests("POST", DOWNLOAD_URL) == retry.MAX_TRIES
    expected = [(n, retry.MAX_TRIES) for n in range(2, retry.MAX_TRIES + 1)]
    assert retry_lines(caplog, f"the CSV of export {export_id}") == expected
    assert in_flight(result, export_id)["rows_done"] < api.exports[export_id].total_rows


def test_expired_urls_are_renewed_within_one_budget(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.expire_urls = 100
    caplog.set_level(logging.WARNING)

    result = run_tap(config_of(api, "csv"), streams=["export_rows"], raise_errors=False)

    one_clear_line(result.error)
    assert isinstance(result.error, ExportError)  # only the feed stops
    message = str(result.error)
    assert "expired" in message
    assert f"({retry.MAX_TRIES} tries in " in message
    assert api.count_requests("POST", DOWNLOAD_URL) == retry.MAX_TRIES
    assert downloads(api) == retry.MAX_TRIES  # each new URL tried once, refused as expired
    assert api.faults.expire_urls == 100 - retry.MAX_TRIES
    export_id = api.created_exports[0]
    assert len(retry_lines(caplog, f"the CSV of export {export_id}")) == retry.MAX_TRIES - 1
    assert in_flight(result, export_id)["rows_done"] == 0


@pytest.fixture
def virtual_clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The retry loop's clock, virtual, with the tap's real waits and their jitter."""
    return virtual_retry_clock(monkeypatch)


# Where a dead API's tries went: the path, and the tries that were not dropped. Pages: every
# try at page 2 is dropped, its prefetch first. CSV: the first is the download cut halfway,
# each later one a request for a new URL, dropped.
TRIES_AFTER_DEATH = {"pages": (PAGE, 0), "csv": (DOWNLOAD_URL, 1)}


@pytest.mark.parametrize(
    ("read_mode", "max_seconds", "tries"),
    [
        pytest.param("csv", None, retry.MAX_TRIES, id="csv"),
        pytest.param("pages", None, retry.MAX_TRIES, id="pages"),
        # Waits of 1, 2, 4 and 8 s (and up to a quarter more): the 6th try is at 30 s.
        pytest.param("pages", 30, 6, id="pages, retry_max_seconds 30"),
    ],
)
def test_a_dead_api_gives_up_at_retry_max_seconds_in_both_read_modes(
    api: FakeContactBased,
    virtual_clock: VirtualClock,
    read_mode: str,
    max_seconds: float | None,
    tries: int,
) -> None:
    api.faults.dies_mid_read = True
    more: dict[str, t.Any] = {} if max_seconds is None else {"retry_max_seconds": max_seconds}

    result = run_tap(config_of(api, read_mode, **more), streams=["export_rows"], raise_errors=False)

    assert api.fault_engine.died.is_set()
    one_clear_line(result.error)
    # A request that fails on the wire stops the run, whatever the read mode.
    assert isinstance(result.error, TransientApiError)
    budget = max_seconds or 120  # the setting's default
    message = str(result.error)
    assert "the connection failed or was dropped" in message
    assert f"({tries} tries in {budget} s)" in message
    # The virtual time passed only in the waits of this one budget, the last cut to its end.
    assert virtual_clock.now == pytest.approx(budget)
    assert len(virtual_clock.waits) == tries - 1
    path, not_dropped = TRIES_AFTER_DEATH[read_mode]
    dropped = [(r.method, r.path) for r in api.requests if r.status == 0]
    assert dropped == [("POST", path)] * (tries - not_dropped)
    in_flight(result, api.created_exports[0])


@pytest.mark.parametrize(
    ("read_mode", "part"),
    [("pages", "Could not read page 2 of export"), ("csv", "The download URL of export")],
)
def test_a_dead_api_is_one_line_naming_the_export_and_exit_1(
    api: FakeContactBased, tmp_path: Path, read_mode: str, part: str
) -> None:
    api.faults.dies_mid_read = True
    config = config_of(api, read_mode, retry_max_seconds=1)

    result = run_command([], tmp_path, config=config)

    assert api.fault_engine.died.is_set()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    export_id = api.created_exports[0]
    assert f"{part} {export_id} of feed {api.feed_ids[0]}" in last
    assert "the connection failed or was dropped" in last
    assert API_KEY not in result.stderr
