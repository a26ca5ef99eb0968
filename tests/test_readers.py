"""The readers on their own: where the data ends, where chunks start, what is fetched ahead.

Unit tests of `PageReader` and `CsvReader` over stubs of the client: an export of some rows
in pages of 1,000, where a page past the rows (or one named missing) answers 404, as the API
does; or the same rows as one CSV download.
"""

from __future__ import annotations

import io
import threading
import types
import typing as t
from dataclasses import replace
from http import HTTPStatus

import pytest
import requests

from tap_contactbased.coercion import Chunk
from tap_contactbased.errors import ApiError, ExportError, TransientApiError
from tap_contactbased.readers import CsvReader, ExportToRead, PageReader

PAGE_SIZE = 1000
PAGE_404 = "POST /intent/feeds/exports/page: 404 Not Found"


class Pages:
    """The reader's view of an export of `rows` rows; each send noted with who made it.

    "ahead" is the reader's thread that fetches the next page while one is emitted,
    "reader" the thread that reads. Each page is tried once: the budget is not tested here.
    """

    def __init__(self, rows: int, *, missing: int | None = None, held: int | None = None) -> None:
        self.rows = rows
        self.missing = missing
        self.sent: list[tuple[int, str]] = []
        # Page `held` is answered only once `release` is set; `answered` notes that it was.
        self.held = held
        self.held_sent = threading.Event()
        self.release = threading.Event()
        self.answered: list[int] = []

    def prepare(self, _method: str, _path: str, *, body: dict[str, t.Any]) -> int:
        return int(body["page"])

    def retrying(self, _what: str, attempt: t.Callable[[], t.Any]) -> t.Any:
        return attempt()

    def send_decoded(self, page: int, _decode: t.Any) -> tuple[list[dict[str, t.Any]], int]:
        if page in (asked for asked, _ in self.sent):  # each page is tried once here
            raise AssertionError(f"page {page} asked for again")
        ahead = threading.current_thread().name.startswith("contactbased-page")
        self.sent.append((page, "ahead" if ahead else "reader"))
        if page == self.held:
            self.held_sent.set()
            # Bounded only so that a bug that waits for it ends (after 30 s) instead of hanging.
            self.release.wait(timeout=30)
            self.answered.append(page)
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
    # From the last row of a page: that page's last row first, then the next page.
    last_of_page = chunks_of(Pages(1800), export_of(1800, None), start_row=1000)
    assert [(chunk.first_row, len(list(chunk.rows))) for chunk in last_of_page] == [
        (1000, 1),
        (1001, 800),
    ]


def test_a_read_resumed_after_the_last_row_of_a_short_last_page_hands_out_no_chunk() -> None:
    api = Pages(1500)

    assert chunks_of(api, export_of(total_rows=1500, total_pages=None), start_row=1501) == []
    assert api.sent == [(2, "reader")]


def test_without_columns_in_the_summary_the_header_is_the_first_rows_fields() -> None:
    # The last page holds a single row: its fields are the header of its chunk.
    api = Pages(1001)

    chunks = chunks_of(api, export_of(total_rows=1001, total_pages=None, columns=()), 1001)

    assert [(chunk.first_row, chunk.header) for chunk in chunks] == [(1001, ["contact_id"])]


class NoRetries:
    """A retry budget that is a bug to use: the CSV of these tests is read whole at once."""

    def __init__(self, what: str) -> None:
        self.what = what

    def failed(self, exc: Exception, *, position: int = 0) -> t.NoReturn:
        raise AssertionError(f"{self.what} failed at row {position}: {exc}")


class CsvDownload:
    """The reader's view of an export of `rows` rows as one CSV; a failed read is a bug here."""

    def __init__(self, rows: int, *, nul_in_row: int | None = None) -> None:
        lines = ["contact_id\n", *(f"{n}\n" for n in range(1, rows + 1))]
        if nul_in_row is not None:
            lines[nul_in_row] = f"{nul_in_row}\x00\n"
        self.body = "".join(lines).encode()

    def attempts(self, what: str) -> NoRetries:
        return NoRetries(what)

    def json(self, _method: str, _path: str, **_: t.Any) -> dict[str, str]:
        return {"url": "https://files.example.com/exp_1.csv"}

    def open_download(self, _url: str, _what: str) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.raw = io.BytesIO(self.body)
        return response


def csv_chunks(rows: int, start_row: int) -> list[tuple[int, int]]:
    """Each chunk of a CSV read from `start_row`: its first row and how many rows it holds."""
    reader = CsvReader(t.cast("t.Any", CsvDownload(rows)), export_of(rows, None))
    return [(chunk.first_row, len(list(chunk.rows))) for chunk in reader.chunks(start_row)]


def test_a_csv_is_handed_out_in_chunks_that_end_on_page_boundaries() -> None:
    # Resuming works the same in both modes: a chunk never spans two pages.
    assert csv_chunks(2500, start_row=1) == [(1, 1000), (1001, 1000), (2001, 500)]
    assert csv_chunks(2500, start_row=1501) == [(1501, 500), (2001, 500)]


@pytest.mark.parametrize(("nul_in_row", "counted"), [(None, 0), (2, 1)], ids=["none", "one"])
def test_a_csv_counts_the_nul_bytes_it_removes_and_none_when_there_are_none(
    nul_in_row: int | None, counted: int
) -> None:
    reader = CsvReader(t.cast("t.Any", CsvDownload(3, nul_in_row=nul_in_row)), export_of(3, None))

    assert [row for chunk in reader.chunks(1) for row in chunk.rows] == [["1"], ["2"], ["3"]]
    assert reader.nul_bytes == counted


def test_a_read_the_stream_stops_does_not_wait_for_the_page_fetched_ahead() -> None:
    # The target stopped reading while page 1 was emitted: the read ends at once, the page
    # being fetched ahead left to finish on its own thread.
    api = Pages(3000, held=2)
    chunks = PageReader(t.cast("t.Any", api), export_of(3000, None)).chunks(1)
    assert isinstance(chunks, types.GeneratorType)  # closed as the stream's loop closes it
    assert next(chunks).first_row == 1
    assert api.held_sent.wait(timeout=30)  # page 2 is on its way

    chunks.close()

    assert api.answered == []  # closed before page 2 came back
    api.release.set()


def test_a_csv_read_the_stream_stops_ends_its_read_ahead_thread() -> None:
    # Past what the read-ahead may hold (8 chunks of 256 KiB): its thread waits for room
    # that a stopped read never makes, until it is told to stop (by `_batches`' close of the
    # body, or by the close of the text stream over it when that is freed).
    before = set(threading.enumerate())
    reader = CsvReader(t.cast("t.Any", CsvDownload(600_000)), export_of(600_000, None))
    chunks = reader.chunks(1)
    assert isinstance(chunks, types.GeneratorType)  # closed as the stream's loop closes it
    assert len(list(next(chunks).rows)) == PAGE_SIZE
    (read_ahead,) = [
        th for th in set(threading.enumerate()) - before if th.name == "contactbased-read-ahead"
    ]

    chunks.close()

    read_ahead.join(timeout=30)  # bounded only so that a thread that never ends fails here
    assert not read_ahead.is_alive()


class BrokenBody:
    """A download body that sends `data`, then breaks off (or, `stalled`, waits until closed)."""

    def __init__(self, data: bytes, *, stalled: bool = False) -> None:
        self.data = data
        self.stalled = stalled
        self.closed = threading.Event()
        self.decode_content = False

    def read(self, _size: int) -> bytes:
        data, self.data = self.data, b""
        if data:
            return data
        if self.stalled:
            # Bounded only so that a bug that never closes it ends (after 60 s) instead of hanging.
            self.closed.wait(timeout=60)
        raise ConnectionResetError("the connection broke")

    def close(self) -> None:
        self.closed.set()


class CsvDownloads(CsvDownload):
    """One download of `bodies` per try, in order; the failed tries noted with their position."""

    def __init__(self, *bodies: t.Any) -> None:
        self.bodies = list(bodies)
        self.failures: list[tuple[int, str]] = []

    def attempts(self, what: str) -> t.Any:
        downloads = self

        class Noted:
            def failed(self, exc: Exception, *, position: int = 0) -> None:
                downloads.failures.append((position, str(exc)))

        return Noted()

    def open_download(self, _url: str, _what: str) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.raw = self.bodies.pop(0)
        return response


def test_a_csv_whose_header_changed_between_two_reads_stops_its_feed() -> None:
    first = BrokenBody(b"contact_id,city\n1,Ulm\n")
    second = BrokenBody(b"contact_id\n1\n2\n")
    api = CsvDownloads(first, second)
    reader = CsvReader(t.cast("t.Any", api), export_of(2, None))

    with pytest.raises(ExportError, match=r"^The CSV of export exp_1 changed its header between"):
        list(reader.chunks(1))

    assert api.failures == [
        (1, "the connection dropped while the body was read (ConnectionResetError)")
    ]


class DownloadUrlAnswer(CsvDownload):
    """A download-url request answered with `answer`."""

    def __init__(self, answer: dict[str, t.Any]) -> None:
        super().__init__(2)
        self.answer = answer

    def json(self, _method: str, _path: str, **_: t.Any) -> dict[str, t.Any]:
        return self.answer


def test_a_download_url_answer_without_a_url_stops_its_feed_naming_pages_mode() -> None:
    # One test, not variants: the mutation run would keep only one of variants alike.
    for answer in ({"expires_at": "2026-12-06T00:00:00Z"}, {"url": ""}, {"url": 17}):
        api = DownloadUrlAnswer(answer)
        reader = CsvReader(t.cast("t.Any", api), export_of(2, None))
        with pytest.raises(ExportError, match="answered without a url for export exp_1; set"):
            list(reader.chunks(1))


def test_a_csv_read_the_stream_stops_while_its_download_stalls_closes_the_download() -> None:
    rows = "".join(f"{n}\n" for n in range(1, 1201))
    body = BrokenBody(f"contact_id\n{rows}".encode(), stalled=True)
    before = set(threading.enumerate())
    chunks = CsvReader(t.cast("t.Any", CsvDownloads(body)), export_of(5000, None)).chunks(1)
    assert isinstance(chunks, types.GeneratorType)  # closed as the stream's loop closes it
    assert len(list(next(chunks).rows)) == PAGE_SIZE
    (read_ahead,) = [
        th for th in set(threading.enumerate()) - before if th.name == "contactbased-read-ahead"
    ]

    chunks.close()

    assert body.closed.is_set()  # the connection given back, not left to the read timeout
    read_ahead.join(timeout=30)  # bounded only so that a thread that never ends fails here
    assert not read_ahead.is_alive()


def test_a_csv_that_cannot_be_decoded_is_read_again_and_named_without_its_bytes() -> None:
    garbled = BrokenBody(b"contact_id\n\xff\xfe\n")
    whole = io.BytesIO(b"contact_id\n1\n2\n")
    api = CsvDownloads(garbled, whole)
    reader = CsvReader(t.cast("t.Any", api), export_of(2, None))

    assert [row for chunk in reader.chunks(1) for row in chunk.rows] == [["1"], ["2"]]
    assert api.failures == [(1, "the body could not be parsed (UnicodeDecodeError)")]
