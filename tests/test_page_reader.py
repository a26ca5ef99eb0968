"""The page reader on its own: where the data ends, and which page it fetches ahead.

Unit tests of `PageReader` over a stub of the client: an export of some rows in pages of
1,000, where a page past the rows (or one named missing) answers 404, as the API does.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import replace
from http import HTTPStatus

import pytest

from tap_contactbased.coercion import Chunk
from tap_contactbased.errors import ApiError, TransientApiError
from tap_contactbased.readers import ExportToRead, PageReader

PAGE_SIZE = 1000
PAGE_404 = "POST /intent/feeds/exports/page: 404 Not Found"


class Pages:
    """The reader's view of an export of `rows` rows; each send noted with who made it.

    "ahead" is the reader's thread that fetches the next page while one is emitted,
    "reader" the thread that reads. Each page is tried once: the budget is not tested here.
    """

    def __init__(self, rows: int, *, missing: int | None = None) -> None:
        self.rows = rows
        self.missing = missing
        self.sent: list[tuple[int, str]] = []

    def prepare(self, _method: str, _path: str, *, body: dict[str, t.Any]) -> int:
        return int(body["page"])

    def retrying(self, _what: str, attempt: t.Callable[[], t.Any]) -> t.Any:
        return attempt()

    def send_decoded(self, page: int, _decode: t.Any) -> tuple[list[dict[str, t.Any]], int]:
        if page in (asked for asked, _ in self.sent):  # each page is tried once here
            raise AssertionError(f"page {page} asked for again")
        ahead = threading.current_thread().name.startswith("contactbased-page")
        self.sent.append((page, "ahead" if ahead else "reader"))
        first = (page - 1) * PAGE_SIZE + 1
        if page == self.missing or first > self.rows:
            raise ApiError(PAGE_404, HTTPStatus.NOT_FOUND)
        last = min(self.rows, first + PAGE_SIZE - 1)
        return [{"contact_id": str(n)} for n in range(first, last + 1)], 0


def read_all(api: Pages, export: ExportToRead, start_row: int = 1) -> list[str]:
    """The contact ids the reader hands out, from `start_row` to the end of the data."""
    return [row["contact_id"] for chunk in chunks_of(api, export, start_row) for row in chunk.rows]


def chunks_of(api: Pages, export: ExportToRead, start_row: int = 1) -> list[Chunk]:
    """The chunks the reader hands out, each with its rows listed."""
    reader = PageReader(t.cast("t.Any", api), export)
    return [replace(c, rows=iter(list(c.rows))) for c in reader.chunks(start_row)]


def export_of(
    total_rows: int | None, total_pages: int | None, columns: tuple[str, ...] = ("contact_id",)
) -> ExportToRead:
    return ExportToRead("exp_1", "export exp_1", PAGE_SIZE, total_rows, total_pages, columns)


def test_a_404_past_a_full_last_page_ends_the_data_that_total_rows_counts() -> None:
    api = Pages(2000)

    ids = read_all(api, export_of(total_rows=2000, total_pages=None))

    assert ids == [str(n) for n in range(1, 2001)]
    assert [page for page, _ in api.sent] == [1, 2, 3]  # the page after a full last one, asked


def test_the_page_after_the_last_one_total_rows_counts_is_not_fetched_ahead() -> None:
    # Fetched ahead only while a page may follow by the counts: past the last one, the
    # reader asks itself once that page came back full (a run that stops while the last
    # page is emitted never asks the API for the page after it).
    api = Pages(2000)

    read_all(api, export_of(total_rows=2000, total_pages=None))

    assert api.sent == [(1, "reader"), (2, "ahead"), (3, "reader")]


def test_a_404_on_the_last_page_total_pages_names_is_read_again_not_taken_for_the_end() -> None:
    # Only total_pages given: page 3 is the last one it names, so its 404 is a page to read
    # again (RereadNeeded), not the end of the data with a count that then disagrees.
    api = Pages(3000, missing=3)

    with pytest.raises(TransientApiError) as raised:
        read_all(api, export_of(total_rows=None, total_pages=3))

    assert str(raised.value) == (
        f"Could not read page 3 of export exp_1: {PAGE_404}, although the export is ready"
    )
    assert api.sent == [(1, "reader"), (2, "ahead"), (3, "ahead")]  # once: one try here


def test_a_read_resumed_after_a_full_last_page_ends_there_without_a_count_problem() -> None:
    # Every row was confirmed, the run stopped before the export was marked delivered: the
    # next run reads from row 2,001, finds no page 3, and the 2,000 rows add up.
    api = Pages(2000)

    assert chunks_of(api, export_of(total_rows=2000, total_pages=None), start_row=2001) == []
    assert api.sent == [(3, "reader")]


def test_a_read_resumed_in_the_middle_of_a_page_starts_at_that_row() -> None:
    api = Pages(1800)

    chunks = chunks_of(api, export_of(total_rows=1800, total_pages=None), start_row=1501)

    assert [chunk.first_row for chunk in chunks] == [1501]
    assert [row["contact_id"] for row in chunks[0].rows] == [str(n) for n in range(1501, 1801)]


def test_a_read_resumed_after_the_last_row_of_a_short_last_page_hands_out_no_chunk() -> None:
    api = Pages(1500)

    assert chunks_of(api, export_of(total_rows=1500, total_pages=None), start_row=1501) == []
    assert api.sent == [(2, "reader")]


def test_without_columns_in_the_summary_the_header_is_the_first_rows_fields() -> None:
    # The last page holds a single row: its fields are the header of its chunk.
    api = Pages(1001)

    chunks = chunks_of(api, export_of(total_rows=1001, total_pages=None, columns=()), 1001)

    assert [(chunk.first_row, chunk.header) for chunk in chunks] == [(1001, ["contact_id"])]
