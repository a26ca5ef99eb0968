"""Hostile answers: bounded memory, one line, no second request for what can never be read.

An answer past a cap of `tap_contactbased.limits` (a line or a body too large, JSON nested
too deep, a number beyond a float) is refused in one line and asked for once; a bundle cell
like that is a misfit value, kept as text; a bad answer about one feed's export stops only
that feed.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from tap_contactbased import endpoints, limits
from tap_contactbased.cli import EXPECTED_FAILURES
from tap_contactbased.errors import RefusedAnswerError
from tap_contactbased.readers import ExportToRead, PageReader
from tests.conftest import API_KEY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.singer_run import SyncResult, run_command_measured, run_tap, selected_catalog

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
HUGE_NUMBER = "1e999"
NESTED = "nests JSON deeper than 256 levels (MAX_JSON_DEPTH)"
OUT_OF_RANGE = "holds a value the tap cannot read (Number out of range"
MEMORY_BOUND = 150 * 1024 * 1024
BAD_VALUES = [
    pytest.param(DEEP_ARRAY, NESTED, id="nested"),
    # Decoded whole, then judged: deeper than the cap, not deep enough to stop the decoder.
    pytest.param("[" * 300 + "]" * 300, NESTED, id="nested 300 levels"),
    pytest.param(HUGE_NUMBER, OUT_OF_RANGE, id="1e999"),
]


def one_line(error: BaseException | None) -> str:
    assert isinstance(error, EXPECTED_FAILURES), repr(error)
    line = str(error)
    assert "\n" not in line
    assert API_KEY not in line
    return line


def feed_rows(api: FakeContactBased, feed_id: str) -> dict[tuple[str, int], dict[str, t.Any]]:
    """What a run delivers of a feed's exports."""
    rows: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        if api.exports[export_id].feed_id == feed_id:
            rows.update(delivered_rows(api, export_id, YESTERDAY))
    return rows


def export_of(api: FakeContactBased, feed_id: str) -> str:
    return next(e for e in api.created_exports if api.exports[e].feed_id == feed_id)


def sync_one_hostile_feed(
    api: FakeContactBased, raw_json: dict[str, dict[str, str]], **settings: t.Any
) -> tuple[SyncResult, str, str]:
    """Two feeds' exports synced; the `raw_json` knob reaches only answers about the first."""
    hostile, healthy = api.feed_ids[:2]
    api.faults.hostile_feeds = {hostile}
    api.faults.raw_json = raw_json
    result = run_tap(make_config(api, **settings), streams=["export_rows"], raise_errors=False)
    return result, hostile, healthy


def assert_only_the_hostile_feed_stopped(
    api: FakeContactBased, result: SyncResult, hostile: str, healthy: str
) -> str:
    """The other feed is delivered whole; the line names the feed that did not finish."""
    line = one_line(result.error)
    assert line.startswith("1 feed(s) did not finish: ")
    assert hostile in line
    records = result.records("export_rows")
    assert {r["feed_id"] for r in records} == {healthy}
    assert by_key(records) == feed_rows(api, healthy)
    return line


def test_an_endless_csv_line_is_refused_in_bounded_memory_after_one_download(
    api: FakeContactBased, tmp_path: Path
) -> None:
    hostile, healthy = api.feed_ids[:2]
    api.faults.hostile_feeds = {hostile}
    api.faults.gzip_endless_line_bytes = 1024 * 1024 * 1024  # about 1 MB of gzip on the wire
    config = make_config(api, read_mode="csv")

    result, peak_rss = run_command_measured(
        [], tmp_path, config=config, catalog=selected_catalog(config, ["export_rows"])
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"The CSV of export {export_of(api, hostile)} of feed {hostile}" in line
    assert "has a line longer than 8 MiB (MAX_CSV_LINE_BYTES)" in line
    assert peak_rss < MEMORY_BOUND, f"peak RSS {peak_rss / 2**20:.0f} MiB"
    downloads = [r for r in api.requests if r.path.startswith("/files/")]
    assert [r.path for r in downloads].count(f"/files/{export_of(api, hostile)}.csv") == 1
    records = result.records("export_rows")
    assert {r["feed_id"] for r in records} == {healthy}
    assert by_key(records) == feed_rows(api, healthy)


def test_a_csv_field_past_its_cap_is_refused_after_one_download(api: FakeContactBased) -> None:
    # Short lines, one quoted field: only the field cap can stop it.
    api.faults.bundle_cell_text = "x\n" * (limits.MAX_CSV_FIELD_CHARS // 2 + 1)
    config = make_config(api, feed_ids=api.feed_ids[:1], read_mode="csv", export_bundles=["emails"])

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    line = one_line(result.error)
    assert f"The CSV of export {api.created_exports[0]}" in line
    assert "has a field longer than 8,388,608 characters (MAX_CSV_FIELD_CHARS)" in line
    assert sum(1 for r in api.requests if r.path.startswith("/files/")) == 1


def pages_of(api: FakeContactBased, export_id: str) -> list[int]:
    return [
        (r.body or {}).get("page", 0)
        for r in api.requests
        if r.path == endpoints.EXPORTS_PAGE and (r.body or {}).get("export_id") == export_id
    ]


@pytest.mark.parametrize("length", ["with Content-Length", "chunked"])
def test_a_page_past_its_cap_is_asked_for_once_and_stops_only_its_feed(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch, length: str
) -> None:
    monkeypatch.setattr(limits, "MAX_PAGE_BYTES", 1024 * 1024)
    api.faults.json_without_length = length == "chunked"
    padding = {"page": {"padding": json.dumps("x" * 2 * 1024 * 1024)}}

    result, hostile, healthy = sync_one_hostile_feed(api, padding, read_mode="pages")

    line = assert_only_the_hostile_feed_stopped(api, result, hostile, healthy)
    assert "POST /intent/feeds/exports/page: the answer is larger than 1 MiB" in line
    assert "Read this export with read_mode csv" in line
    assert pages_of(api, export_of(api, hostile)) == [1]


def test_an_answer_past_its_cap_is_refused_without_a_retry(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_ANSWER_BYTES", 64 * 1024)
    api.faults.raw_json = {"credits": {"padding": json.dumps("x" * 128 * 1024)}}
    api.faults.json_without_length = True

    result = run_tap(make_config(api), streams=["credits"], raise_errors=False)

    line = one_line(result.error)
    assert line.startswith("GET /organization/credits: the answer is larger than 64 KiB")
    assert api.count_requests("GET", endpoints.CREDITS) == 1


# (place, raw_json family, field, method of the request refused, streams synced)
WHOLE_ANSWERS: list[tuple[str, str, str, str, list[str]]] = [
    ("feeds list (tap's client)", "envelope", "total", "GET", ["export_rows"]),
    ("feeds list (SDK stream)", "envelope", "total", "GET", ["feeds"]),
    ("exports list (tap's client)", "summary", "build_notes", "POST", ["export_rows"]),
    ("credits (tap's client)", "credits", "records_remaining", "GET", ["export_rows"]),
    ("credits (SDK stream)", "credits", "records_remaining", "GET", ["credits"]),
]


@pytest.mark.parametrize(("value", "verdict"), BAD_VALUES)
@pytest.mark.parametrize(
    ("place", "family", "field", "method", "streams"),
    WHOLE_ANSWERS,
    ids=[a[0] for a in WHOLE_ANSWERS],
)
def test_a_list_or_credits_answer_past_a_cap_is_one_line_and_creates_nothing(
    api: FakeContactBased,
    place: str,
    family: str,
    field: str,
    method: str,
    streams: list[str],
    value: str,
    verdict: str,
) -> None:
    api.make_ready_export(api.feed_ids[0], 3)  # an export for the exports list to hold
    api.faults.raw_json = {family: {field: value}}

    result = run_tap(make_config(api), streams=streams, raise_errors=False)

    line = one_line(result.error)
    assert isinstance(result.error, RefusedAnswerError)
    assert verdict in line
    assert line.split(":")[0].startswith(method)
    refused = line.split(":")[0].split(" ", 1)[1]
    assert api.count_requests(method, refused) == 1  # not asked for again
    assert api.created_exports == []


@pytest.mark.parametrize("value", [DEEP_ARRAY, HUGE_NUMBER], ids=["nested", "1e999"])
def test_an_error_answer_past_a_cap_is_still_retried_like_any_other(
    api: FakeContactBased, value: str
) -> None:
    api.faults.raw_json = {"error": {"detail": value}}
    api.faults.rate_limit_every = 2
    api.faults.retry_after = 0.01

    result = run_tap(make_config(api), streams=["credits", "feeds"])

    assert len(result.records("feeds")) == len(api.feeds)
    assert len(result.records("credits")) == 1
    assert any(r.status == 429 for r in api.requests)


@pytest.mark.parametrize(("value", "verdict"), BAD_VALUES)
def test_a_count_past_a_cap_stops_only_its_feed(
    api: FakeContactBased, value: str, verdict: str
) -> None:
    result, hostile, healthy = sync_one_hostile_feed(api, {"count": {"total_rows": value}})

    line = assert_only_the_hostile_feed_stopped(api, result, hostile, healthy)
    assert f"counting the export of feed {hostile} failed: POST /intent/feeds/exports/count" in line
    assert verdict in line
    assert [api.exports[e].feed_id for e in api.created_exports] == [healthy]


@pytest.mark.parametrize(
    ("rows", "verdict"),
    [
        (f'[{{"company_name": {DEEP_ARRAY}}}]', NESTED),
        (f'[{{"company_name": {HUGE_NUMBER}}}]', OUT_OF_RANGE),
        ('[{"company_name": ' + '{"a":' * 300 + "1" + "}" * 300 + "}]", NESTED),
    ],
    ids=["nested past the recursion limit", "1e999", "nested 300 levels"],
)
def test_a_page_past_a_cap_is_asked_for_once_and_stops_only_its_feed(
    api: FakeContactBased, rows: str, verdict: str
) -> None:
    raw_json = {"page": {"rows": rows}}

    result, hostile, healthy = sync_one_hostile_feed(api, raw_json, read_mode="pages")

    line = assert_only_the_hostile_feed_stopped(api, result, hostile, healthy)
    assert f"POST /intent/feeds/exports/page: the answer {verdict}" in line
    assert pages_of(api, export_of(api, hostile)) == [1]


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
@pytest.mark.parametrize(
    "cell",
    [DEEP_OBJECT, '{"a":' * 300 + "1" + "}" * 300, '{"emails": [{"score": 1e999}]}'],
    ids=["nested past the recursion limit", "nested 300 levels", "1e999"],
)
def test_a_bad_bundle_cell_is_a_misfit_value_run_after_run(
    api: FakeContactBased, read_mode: str, cell: str
) -> None:
    api.faults.bundle_cell_text = cell
    config = make_config(
        api,
        feed_ids=api.feed_ids[:1],
        read_mode=read_mode,
        export_bundles=["emails"],
        export_mode="snapshot",
    )

    # Without a state the second run reuses the same ready export: the same row again.
    for run in (1, 2):
        result = run_tap(config, streams=["export_rows"])

        export_id = api.created_exports[-1]
        first, *rest = sorted(result.records("export_rows"), key=lambda r: r["export_row"])
        assert first["export_id"] == export_id, run
        assert first["bundle_emails"] is None
        assert first["extra_columns"] == {"bundle_emails": cell}
        expected = delivered_rows(api, export_id, None)
        assert by_key(rest) == {key: row for key, row in expected.items() if key[1] > 1}
        assert len(rest) == len(expected) - 1
    assert len(api.created_exports) == 1


class PagesWithARefusedSecond:
    """The reader's view of an API whose second page is refused (a unit test of the reader)."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def prepare(self, _method: str, _path: str, *, body: dict[str, t.Any]) -> int:
        return int(body["page"])

    def retrying(self, _what: str, attempt: t.Callable[[], t.Any]) -> t.Any:
        return attempt()

    def send_decoded(self, page: int, _decode: t.Any) -> tuple[list[dict[str, t.Any]], int]:
        self.asked.append(page)
        if page == 2:
            raise RefusedAnswerError("POST /intent/feeds/exports/page: the answer is too large")
        return [{"contact_id": None}] * 1000, 0


def test_a_prefetched_page_past_a_cap_is_not_asked_for_again() -> None:
    api = PagesWithARefusedSecond()
    export = ExportToRead("exp_1", "export exp_1", 1000, 3000, 3, ())
    reader = PageReader(t.cast("t.Any", api), export)

    with pytest.raises(RefusedAnswerError):
        [list(chunk.rows) for chunk in reader.chunks(1)]

    assert api.asked == [1, 2]  # page 2 was fetched ahead, once
