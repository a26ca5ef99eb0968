"""Reading a ready export: page by page, or as one streamed CSV, until the data ends.

Both readers hand out rows in chunks that end on page boundaries; the stream confirms each
chunk in its state once every row of it has been written. Neither trusts a row count the
contract only assumes: they read until the data ends (the CSV to its end; pages until a
short or empty page, or the API's 404 past the last one) and then check what they read
against every count the API did give: `total_rows`, `total_pages`, and the count taken
before the export was created. A difference that reading again does not mend is an
`ExportError`, never a smaller delivery.

A page, or the CSV from the first row not yet handed out, is read again under ONE retry
budget (`retry.Attempts`): every way its read fails is a try of that one loop, listed in
docs/architecture.md, "Where retries live". The class of the last failure decides what
stops: a request that keeps failing stops the run; a ready export that cannot be read whole
(`RereadNeeded`, `ExpiredDownloadUrl`) stops only its feed.

Pages are fetched whole and decoded at C speed, the next one while the current one is
emitted (on that thread's own session of the client); the CSV is parsed as it arrives, so
memory holds about one page whatever the size of the export.
"""

from __future__ import annotations

import collections
import csv
import http.client
import itertools
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus

import requests
import urllib3.exceptions

from tap_contactbased import endpoints, limits
from tap_contactbased.answers import BadAnswer, decode_page
from tap_contactbased.bodies import ReadAhead, text_stream
from tap_contactbased.coercion import Chunk
from tap_contactbased.errors import (
    ApiError,
    ExportError,
    RefusedAnswerError,
    RereadNeeded,
    TransientApiError,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_contactbased.api_client import ApiClient
    from tap_contactbased.summary import ExportSummary

# The csv module's words for a field past its limit: a verdict on the file, not a cut.
FIELD_LIMIT_ERROR = "field larger than field limit"

# What a cut or garbled CSV raises while it is read, after the response has started.
CSV_READ_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    csv.Error,
    UnicodeDecodeError,
)

# CSV rows are parsed in small batches at C speed; a batch cut by a failure is read again.
BATCH_ROWS = 500


@dataclass(frozen=True)
class ExportToRead:
    """What the tap knows of a ready export before reading it, each count only if given."""

    export_id: str
    name: str
    page_size: int
    total_rows: int | None
    total_pages: int | None
    columns: tuple[str, ...]
    at_least: int | None = None  # the count before creation: fewer rows means some are missing

    @classmethod
    def of(
        cls, summary: ExportSummary, name: str, *, page_size: int, at_least: int | None = None
    ) -> ExportToRead:
        return cls(
            export_id=summary.export_id,
            name=name,
            page_size=summary.page_size or page_size,
            total_rows=summary.total_rows,
            total_pages=summary.total_pages,
            columns=tuple(summary.columns),
            at_least=at_least,
        )

    @property
    def last_page(self) -> int | None:
        """The number of the last page, when a count says it."""
        if self.total_pages is not None:
            return self.total_pages
        if self.total_rows is not None:
            return -(-self.total_rows // self.page_size)
        return None

    def page_rows(self, page: int) -> tuple[int, int | None]:
        """The fewest and the most rows page `page` may hold by the counts given."""
        size, before = self.page_size, (page - 1) * self.page_size
        if self.total_rows is not None:
            exact = max(0, min(size, self.total_rows - before))
            return exact, exact
        least = 0
        if self.total_pages is not None and page < self.total_pages:
            least = size
        if self.at_least is not None:
            least = max(least, min(size, self.at_least - before))
        return least, size

    def count_problem(self, rows: int) -> str | None:
        """What does not add up when the data ended after `rows` rows; None when it does."""
        pages = -(-rows // self.page_size)
        if self.total_rows is not None and rows != self.total_rows:
            return f"the data ended after {rows:,} rows but total_rows says {self.total_rows:,}"
        if self.total_pages is not None and pages != self.total_pages:
            return (
                f"the data ended after {rows:,} rows ({pages} pages of {self.page_size:,}) but "
                f"total_pages says {self.total_pages}"
            )
        if self.at_least is not None and rows < self.at_least:
            return (
                f"the data ended after {rows:,} rows but the count before the export was "
                f"created said {self.at_least:,}"
            )
        return None

    def mismatch(self, problem: str) -> ExportError:
        """The error for a count that reading again did not mend."""
        return ExportError(
            f"{self.name}: {problem}. The rows read so far are confirmed and the export stays "
            "in the state: the next run reads it on once the API's answer adds up"
        )


class PageReader:
    """Rows of a ready export through POST /intent/feeds/exports/page.

    The page fetched ahead is sent once and never retried: it is that page's first try, and
    a failure of it counts in that page's budget like any other.
    """

    def __init__(self, client: ApiClient, export: ExportToRead) -> None:
        self._client = client
        self._export = export
        self._prefetcher: ThreadPoolExecutor | None = None
        self._prefetched: tuple[int, Future[tuple[list[dict[str, t.Any]], int]]] | None = None
        self.nul_bytes = 0

    def chunks(self, start_row: int) -> Iterator[Chunk]:
        """One chunk per page from the page that holds `start_row`, until the data ends."""
        export = self._export
        size = export.page_size
        page = (start_row - 1) // size + 1
        rows_read = (page - 1) * size
        try:
            # Past a full last page the data may go on whatever the counts say: the page
            # after it must be empty or missing, or the counts are wrong (checked below).
            while True:
                rows = self._page(page)
                if rows is None:
                    break
                first = (page - 1) * size + 1
                skip = max(0, start_row - first)
                header = list(export.columns) or (list(rows[0]) if rows else [])
                if len(rows) > skip:
                    yield Chunk(first + skip, header, iter(rows[skip:]), "page")
                rows_read = first - 1 + len(rows)
                if len(rows) < size:
                    break
                page += 1
        finally:  # the page fetched ahead, if any, is left to finish on its own thread
            self._prefetched = None
            if self._prefetcher is not None:
                self._prefetcher.shutdown(wait=False, cancel_futures=True)
        problem = export.count_problem(rows_read)
        if problem is not None:
            raise export.mismatch(problem)

    def _page(self, page: int) -> list[dict[str, t.Any]] | None:
        """The rows of a page, tried until they fit the counts; None past the end."""
        what = f"page {page} of {self._export.name}"
        try:
            return self._client.retrying(f"Reading {what}", lambda: self._attempt(page, what))
        except TransientApiError as exc:  # a request that kept failing: it stops the run
            given_up = exc
        raise given_up.named(f"Could not read {what}")

    def _attempt(self, page: int, what: str) -> list[dict[str, t.Any]] | None:
        """One try at a page (its prefetched answer, when there is one)."""
        export = self._export
        least, most = export.page_rows(page)
        try:
            rows, nul_bytes = self._answer(page)
        except ApiError as exc:
            if exc.status not in {HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT}:
                raise
            last = export.last_page
            if least == 0 and (last is None or page > last):
                return None  # past the last page, by the counts or by the data
            raise RereadNeeded(f"{exc}, although the export is ready", what=what) from None
        if most is not None and len(rows) > most:
            raise export.mismatch(
                f"page {page} holds {len(rows):,} rows, more than the {most:,} the counts allow"
            )
        if len(rows) < least:
            raise RereadNeeded(f"the page held {len(rows):,} rows, {least:,} expected", what=what)
        self.nul_bytes += nul_bytes
        if len(rows) == export.page_size and page != export.last_page:
            self._prefetch(page + 1)
        return rows

    def _answer(self, page: int) -> tuple[list[dict[str, t.Any]], int]:
        """The page's rows from one send: the one made ahead of time, if it was for it."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == page:
            return prefetched[1].result()
        return self._client.send_decoded(self._request(page), decode_page)

    def _request(self, page: int) -> t.Any:
        return self._client.prepare(
            "POST", endpoints.EXPORTS_PAGE, body={"export_id": self._export.export_id, "page": page}
        )

    def _prefetch(self, page: int) -> None:
        if self._prefetcher is None:
            self._prefetcher = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="contactbased-page"
            )
        request = self._request(page)  # built here: only the sending runs on the thread
        future = self._prefetcher.submit(self._client.send_decoded, request, decode_page)
        self._prefetched = (page, future)


class CsvReader:
    """Rows of a ready export from its full CSV, streamed through a signed URL.

    Chunks are cut on page boundaries so that resuming works the same in both modes.
    """

    def __init__(self, client: ApiClient, export: ExportToRead) -> None:
        self._client = client
        self._export = export
        self.header: list[str] | None = None
        self.nul_bytes = 0
        csv.field_size_limit(limits.MAX_CSV_FIELD_CHARS)

    def chunks(self, start_row: int) -> Iterator[Chunk]:
        """Chunks of up to a page of rows, from `start_row` until the file ends."""
        size = self._export.page_size
        stream = itertools.chain.from_iterable(self._batches(start_row))
        number = start_row
        while (first := next(stream, None)) is not None:
            assert self.header is not None  # set when the download opened
            count = size - (number - 1) % size
            rows = itertools.chain([first], itertools.islice(stream, count - 1))
            yield Chunk(number, self.header, rows, "csv")
            # The stream takes every row of a chunk before it asks for the next one.
            number += count

    def _batches(self, start_row: int) -> Iterator[list[list[str]]]:
        """Every row from `start_row` to the end, read again from there after a failure.

        Each try asks for a new download URL and skips the rows an earlier try handed out.
        """
        export = self._export
        what = f"the CSV of {export.name}"
        attempts = self._client.attempts(f"Reading {what}")
        next_row = start_row
        while True:
            failure: TransientApiError
            try:
                response = self._open()
                response.raw.decode_content = True
                body = ReadAhead(response.raw, line_limit=limits.MAX_CSV_LINE_BYTES)
                try:
                    reader = csv.reader(text_stream(body))
                    header = next(reader, None)
                    if header is not None:
                        self._check_header(header)
                        # Rows before next_row were handed out by an earlier read: consumed.
                        collections.deque(itertools.islice(reader, next_row - 1), maxlen=0)
                        while batch := list(itertools.islice(reader, BATCH_ROWS)):
                            yield batch
                            next_row += len(batch)
                finally:
                    self.nul_bytes += body.nul_bytes
                    body.close()
                    response.close()
                problem = export.count_problem(next_row - 1)
                if problem is None:
                    return
                failure = RereadNeeded(problem, what=what)
            except BadAnswer as verdict:
                raise self._refusal(str(verdict)) from None
            except TransientApiError as exc:  # the URL or the download did not start
                failure = exc
            except CSV_READ_ERRORS as exc:
                if isinstance(exc, csv.Error) and FIELD_LIMIT_ERROR in str(exc):
                    raise self._refusal(
                        f"has a field longer than {limits.MAX_CSV_FIELD_CHARS:,} characters "
                        "(MAX_CSV_FIELD_CHARS)"
                    ) from None
                failure = RereadNeeded(describe_read_error(exc), what=what)
            attempts.failed(failure, position=next_row)

    def _refusal(self, problem: str) -> RefusedAnswerError:
        return RefusedAnswerError(
            f"The CSV of {self._export.name} {problem}, which the tap does not hold; it is not "
            "downloaded again. Rows up to the last confirmed page are saved; report this "
            "difference"
        )

    def _check_header(self, header: list[str]) -> None:
        if self.header is None:
            self.header = header
        elif header != self.header:
            msg = f"The CSV of {self._export.name} changed its header between two reads"
            raise ExportError(msg)

    def _open(self) -> requests.Response:
        """One try's download, opened: a new signed URL, sent once, and its GET, sent once."""
        export = self._export
        try:
            answer = self._client.json(
                "POST",
                endpoints.EXPORTS_DOWNLOAD_URL,
                body={"export_id": export.export_id},
                retry=False,  # a failure counts in the CSV's budget
            )
        except TransientApiError as exc:
            failed = exc
        else:
            url = answer.get("url") if isinstance(answer, dict) else None
            if not isinstance(url, str) or not url:
                msg = (
                    f"POST {endpoints.EXPORTS_DOWNLOAD_URL} answered without a url for "
                    f"{export.name}; set read_mode to pages to read it page by page, "
                    "and report this difference"
                )
                raise ExportError(msg)
            return self._client.open_download(url, f"the CSV download of {export.name}")
        raise failed.named(f"The download URL of {export.name}")


def describe_read_error(exc: BaseException) -> str:
    """What broke, without the exception's own text (it may hold the URL)."""
    if isinstance(exc, (csv.Error, UnicodeDecodeError)):
        return f"the body could not be parsed ({type(exc).__name__})"
    return f"the connection dropped while the body was read ({type(exc).__name__})"


def make_reader(mode: str, client: ApiClient, export: ExportToRead) -> PageReader | CsvReader:
    """The reader for the `read_mode` setting."""
    reader_class = CsvReader if mode == "csv" else PageReader
    return reader_class(client, export)
