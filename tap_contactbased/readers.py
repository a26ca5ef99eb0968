"""Reading a ready export: page by page, or as one streamed CSV.

Both readers hand out the rows in chunks that end on page boundaries; the stream confirms
each chunk in its state once every row of it has been written. Bodies are read ahead by a
thread and parsed as they arrive (ijson for pages, the csv module for the file), so memory
holds a few megabytes whatever the export's size. A connection that drops or a body that
is cut mid-way is opened again and read on from the first row not yet handed out, with a
bounded number of tries; the export is frozen, so the same rows come back in the same order.
"""

from __future__ import annotations

import collections
import csv
import http.client
import itertools
import logging
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import ijson
import requests
import urllib3.exceptions

from tap_contactbased.bodies import ReadAhead, text_stream
from tap_contactbased.client import ExpiredDownloadUrl
from tap_contactbased.errors import ApiError, ExportError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_contactbased.client import ContactBasedApi
    from tap_contactbased.exports import ExportSummary

EXPORT_PAGE = "/intent/feeds/exports/page"
DOWNLOAD_URL = "/intent/feeds/exports/download-url"
URL_RENEWALS = 3
# A field larger than this is refused with a clear error rather than buffered without end.
MAX_FIELD_BYTES = 64 * 1024 * 1024

# What a cut or garbled body raises while it is read, after the response has started.
# Failures to start a response are not here: the request's own retries already had them.
READ_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ijson.JSONError,
    csv.Error,
    UnicodeDecodeError,
)

RawRow = t.Any  # list[str] from the CSV, dict[str, str | None] from a page
# Rows are parsed in small batches at C speed; a batch cut by a failure is read again whole.
BATCH_ROWS = 500


def skip_rows(rows: Iterator[RawRow], count: int) -> None:
    """Consume `count` rows that an earlier read already handed out."""
    collections.deque(itertools.islice(rows, count), maxlen=0)


@dataclass
class Chunk:
    """Consecutive rows of an export, starting at `first_row` (1-based)."""

    first_row: int
    header: list[str]
    rows: Iterator[RawRow]
    form: t.Literal["csv", "page"]


class Retrier:
    """Counts failed reads of one part of an export; progress in between resets it."""

    def __init__(
        self,
        what: str,
        max_tries: int,
        pause: Callable[[int], None],
        logger: logging.Logger,
    ) -> None:
        """Retry reads of `what` up to `max_tries` times in a row, pausing in between."""
        self._what = what
        self._max_tries = max_tries
        self._pause = pause
        self._logger = logger
        self._tries = 0
        self._position = -1

    def failed(self, position: int, problem: str) -> None:
        """Record a failed read that got to `position`; raise once tries run out."""
        if position > self._position:
            self._tries = 0
            self._position = position
        self._tries += 1
        if self._tries >= self._max_tries:
            msg = (
                f"Could not read {self._what}: {problem} ({self._tries} tries in a row). "
                "Rows up to the last confirmed page are saved; the next run resumes there."
            )
            raise ExportError(msg)
        self._logger.warning(
            "Reading %s again (try %d of %d): %s",
            self._what,
            self._tries + 1,
            self._max_tries,
            problem,
        )
        self._pause(self._tries)


def describe_read_error(exc: BaseException) -> str:
    """What broke, without the exception's own text (it may hold the URL)."""
    if isinstance(exc, (ijson.JSONError, csv.Error, UnicodeDecodeError)):
        return f"the body could not be parsed ({type(exc).__name__})"
    return f"the connection dropped while the body was read ({type(exc).__name__})"


class Body(t.NamedTuple):
    """An open response and its body, read ahead by a thread."""

    response: requests.Response
    stream: ReadAhead

    def close(self) -> None:
        """Stop reading ahead and release the connection."""
        self.stream.close()
        self.response.close()


def open_body(response: requests.Response) -> Body:
    """Start reading a response's (decoded) body ahead of its parser."""
    response.raw.decode_content = True
    return Body(response, ReadAhead(response.raw))


class PageReader:
    """Rows of a ready export through POST /intent/feeds/exports/page.

    While one page is parsed and emitted, the next one is requested and read ahead in the
    background (a bounded queue each), so at most about two pages are in flight.
    """

    def __init__(
        self,
        api: ContactBasedApi,
        export: ExportSummary,
        logger: logging.Logger,
        *,
        max_tries: int,
        pause: Callable[[int], None],
    ) -> None:
        """Read `export` through `api`."""
        self._api = api
        self._export = export
        self._logger = logger
        self._max_tries = max_tries
        self._pause = pause
        self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="contactbased-page")
        self._prefetched: tuple[int, Future[Body]] | None = None
        self.nul_bytes = 0

    def chunks(self, start_row: int) -> Iterator[Chunk]:
        """One chunk per page, from the page that holds `start_row`."""
        export = self._export
        size = export.page_size
        try:
            for page in range((start_row - 1) // size + 1, export.total_pages + 1):
                first = (page - 1) * size + 1
                skip = max(0, start_row - first)
                rows = itertools.chain.from_iterable(self._batches(page, skip))
                header = export.columns
                if not header:
                    # The summary left the columns out [assumed possible]: the rows name them.
                    first_row = next(rows, None)
                    if first_row is None:
                        return
                    header = list(first_row)
                    rows = itertools.chain([first_row], rows)
                yield Chunk(first + skip, header, rows, "page")
        finally:
            self._drop_prefetched()
            self._prefetcher.shutdown(wait=False)

    def _open(self, page: int) -> Body:
        response = self._api.open_post(
            EXPORT_PAGE, {"export_id": self._export.export_id, "page": page}
        )
        return open_body(response)

    def _prefetch(self, page: int) -> None:
        if page <= self._export.total_pages:
            self._prefetched = (page, self._prefetcher.submit(self._open, page))

    def _take_prefetched(self, page: int) -> Body | None:
        """The body requested ahead for `page`, if that worked; else the caller asks again."""
        if self._prefetched is None or self._prefetched[0] != page:
            self._drop_prefetched()
            return None
        future = self._prefetched[1]
        self._prefetched = None
        try:
            return future.result()
        except Exception:  # the request made again below retries and reports
            return None

    def _drop_prefetched(self) -> None:
        if self._prefetched is not None:
            future = self._prefetched[1]
            self._prefetched = None
            future.add_done_callback(
                lambda done: done.result().close() if done.exception() is None else None
            )

    def _batches(self, page: int, skip: int) -> Iterator[list[RawRow]]:
        export = self._export
        expected = min(export.page_size, export.total_rows - (page - 1) * export.page_size)
        delivered = skip
        retrier = Retrier(
            f"page {page} of {export.describe()}", self._max_tries, self._pause, self._logger
        )
        body = self._take_prefetched(page)
        first_try = True
        while True:
            try:
                body = body or self._open(page)
                if first_try:
                    # Not again while this page is retried: one request at a time then.
                    self._prefetch(page + 1)
                try:
                    rows = ijson.items(body.stream, "rows.item")
                    skip_rows(rows, delivered)
                    while batch := list(itertools.islice(rows, BATCH_ROWS)):
                        yield batch
                        delivered += len(batch)
                finally:
                    self.nul_bytes += body.stream.nul_bytes
                    body.close()
                if delivered >= expected:
                    return
                problem = f"the page ended after {delivered} of {expected} rows"
            except ApiError as exc:
                if exc.status not in {404, 409}:
                    raise
                problem = f"{exc} although the export is ready"
            except READ_ERRORS as exc:
                problem = describe_read_error(exc)
            body, first_try = None, False
            self._drop_prefetched()
            retrier.failed(delivered, problem)


class CsvReader:
    """Rows of a ready export from its full CSV, streamed through one signed URL.

    Chunks are cut on page boundaries so that resuming works the same in both modes.
    """

    def __init__(
        self,
        api: ContactBasedApi,
        export: ExportSummary,
        logger: logging.Logger,
        *,
        max_tries: int,
        pause: Callable[[int], None],
    ) -> None:
        """Read `export` through `api`."""
        self._api = api
        self._export = export
        self._logger = logger
        self._max_tries = max_tries
        self._pause = pause
        self.header: list[str] | None = None
        self.nul_bytes = 0
        csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_BYTES))

    def chunks(self, start_row: int) -> Iterator[Chunk]:
        """Chunks of up to a page of rows, from `start_row` to the last row."""
        export = self._export
        total = export.total_rows
        if start_row > total:
            return
        batches = self._batches(start_row)
        first = next(batches)  # opens the download, which sets the header
        assert self.header is not None
        stream = itertools.chain.from_iterable(itertools.chain([first], batches))
        size = export.page_size
        number = start_row
        while number <= total:
            count = min(size - (number - 1) % size, total - number + 1)
            yield Chunk(number, self.header, itertools.islice(stream, count), "csv")
            number += count

    def _batches(self, start_row: int) -> Iterator[list[list[str]]]:
        export = self._export
        total = export.total_rows
        next_row = start_row
        retrier = Retrier(
            f"the CSV of {export.describe()}", self._max_tries, self._pause, self._logger
        )
        while True:
            try:
                body = open_body(self._open())
                try:
                    reader = csv.reader(text_stream(body.stream))
                    header = next(reader, None)
                    if header is not None:
                        self._check_header(header)
                        # Rows before next_row were handed out by an earlier read.
                        skip_rows(reader, next_row - 1)
                        while batch := list(
                            itertools.islice(reader, min(BATCH_ROWS, total - next_row + 1))
                        ):
                            yield batch
                            next_row += len(batch)
                finally:
                    self.nul_bytes += body.stream.nul_bytes
                    body.close()
                if next_row > total:
                    return
                problem = f"the file ended after row {next_row - 1} of {total}"
            except READ_ERRORS as exc:
                problem = describe_read_error(exc)
            retrier.failed(next_row, problem)

    def _check_header(self, header: list[str]) -> None:
        if self.header is None:
            self.header = header
        elif header != self.header:
            msg = f"The CSV of {self._export.describe()} changed its header between two reads."
            raise ExportError(msg)

    def _open(self) -> requests.Response:
        what = f"the CSV download of {self._export.describe()}"
        for _ in range(URL_RENEWALS):
            answer = self._api.post(DOWNLOAD_URL, {"export_id": self._export.export_id})
            try:
                return self._api.open_download(str(answer["url"]), what)
            except ExpiredDownloadUrl:
                self._logger.info("The download URL of %s expired; asking for a new one.", what)
        msg = f"Every download URL for {what} was refused as expired ({URL_RENEWALS} tries)."
        raise ExportError(msg)


def make_reader(
    mode: str,
    api: ContactBasedApi,
    export: ExportSummary,
    logger: logging.Logger,
    *,
    max_tries: int,
    pause: Callable[[int], None],
) -> PageReader | CsvReader:
    """The reader for the `read_mode` setting."""
    reader_class = CsvReader if mode == "csv" else PageReader
    return reader_class(api, export, logger, max_tries=max_tries, pause=pause)
