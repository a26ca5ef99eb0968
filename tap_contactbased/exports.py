"""The export lifecycle, free of stream logic: find or create, preflight, poll.

An export is billed when it is created, so the lifecycle looks for a reusable one on the
API before it creates anything: a run that died while an export was building, even with
its state lost, finds that export again instead of paying for a second one. Reading the
rows of a ready export is the job of `readers`.
"""

from __future__ import annotations

import datetime
import json
import logging
import random
import time
import typing as t
from dataclasses import dataclass

from tap_contactbased.client import envelope_items
from tap_contactbased.errors import CreditError, ExportError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from tap_contactbased.client import ContactBasedApi

EXPORTS = "/intent/feeds/exports"
EXPORTS_LIST = "/intent/feeds/exports/list"
EXPORTS_COUNT = "/intent/feeds/exports/count"
SEARCH = "/intent/feeds/search"
CREDITS = "/organization/credits"

BUILDING, READY, FAILED = "building", "ready", "failed"
REUSABLE_STATUSES = (BUILDING, READY)
LIST_PAGE_SIZE = 50


@dataclass(frozen=True)
class ExportOptions:
    """What defines an export: the body of preview, count and create."""

    feed_id: str
    lookback_days: int
    page_size: int
    max_rows: int | None = None
    require_contact_id: bool = False
    consumer_filters: tuple[Mapping[str, t.Any], ...] = ()
    enrichment_bundles: tuple[str, ...] = ()

    @property
    def effective_require_contact_id(self) -> bool:
        """Filters and bundles force rows with a contact id [doc]."""
        return self.require_contact_id or bool(self.consumer_filters or self.enrichment_bundles)

    def body(self) -> dict[str, t.Any]:
        """The JSON body for the export endpoints."""
        body: dict[str, t.Any] = {
            "feed_id": self.feed_id,
            "lookback_days": self.lookback_days,
            "page_size": self.page_size,
            "require_contact_id": self.effective_require_contact_id,
        }
        if self.max_rows is not None:
            body["max_rows"] = self.max_rows
        if self.consumer_filters:
            body["consumer_filters"] = [dict(f) for f in self.consumer_filters]
        if self.enrichment_bundles:
            body["enrichment_bundles"] = list(self.enrichment_bundles)
        return body

    def made(self, summary: ExportSummary) -> bool:
        """Whether `summary` is an export made with these options.

        Options the summary does not echo are taken at their defaults [assumed].
        """
        raw = summary.raw
        return (
            summary.feed_id == self.feed_id
            and raw.get("lookback_days") == self.lookback_days
            and raw.get("page_size", self.page_size) == self.page_size
            and raw.get("max_rows") == self.max_rows
            and bool(raw.get("require_contact_id", False)) == self.effective_require_contact_id
            and _canonical(raw.get("consumer_filters") or []) == _canonical(self.consumer_filters)
            and sorted(raw.get("enrichment_bundles") or []) == sorted(self.enrichment_bundles)
        )


def _canonical(filters: t.Iterable[Mapping[str, t.Any]]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in filters)


@dataclass(frozen=True)
class ExportSummary:
    """An export as the API describes it; `raw` keeps every field it sent."""

    raw: Mapping[str, t.Any]

    @property
    def export_id(self) -> str:
        """The export's id."""
        return str(self.raw["export_id"])

    @property
    def feed_id(self) -> str:
        """The feed it exports."""
        return str(self.raw.get("feed_id", ""))

    @property
    def status(self) -> str:
        """`building`, `ready`, `failed`, or something the tap does not know."""
        return str(self.raw.get("status"))

    @property
    def progress(self) -> float:
        """Build progress from 0 to 1."""
        return float(self.raw.get("build_progress") or 0.0)

    @property
    def start_date(self) -> str | None:
        """First day of the window."""
        return self.raw.get("start_date")

    @property
    def end_date(self) -> str | None:
        """Last day of the window: the day the export was made."""
        return self.raw.get("end_date")

    @property
    def total_rows(self) -> int:
        """Rows of a ready export."""
        return int(self.raw.get("total_rows") or 0)

    @property
    def page_size(self) -> int:
        """Rows per page."""
        return int(self.raw["page_size"])

    @property
    def total_pages(self) -> int:
        """Pages of a ready export (computed when the API leaves it out)."""
        pages = self.raw.get("total_pages")
        if pages is not None:
            return int(pages)
        return -(-self.total_rows // self.page_size)

    @property
    def columns(self) -> list[str]:
        """The columns of a ready export, in order."""
        return list(self.raw.get("columns") or [])

    @property
    def records_reserved(self) -> int:
        """Records credits the export reserved when it was created."""
        return int(self.raw.get("records_reserved") or 0)

    def describe(self) -> str:
        """The export and its window, for log lines."""
        return (
            f"export {self.export_id} of feed {self.feed_id} ({self.start_date}..{self.end_date})"
        )


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how often to poll a building export."""

    timeout_seconds: float
    stall_timeout_seconds: float
    max_interval_seconds: float
    first_interval_seconds: float = 1.0


@dataclass(frozen=True)
class CreditCheck:
    """What an export would cost and what is left."""

    records_required: int
    records_remaining: int | None
    total_rows: int


class ExportLifecycle:
    """Find, create and wait for exports through one `ContactBasedApi`."""

    def __init__(
        self,
        api: ContactBasedApi,
        wait: WaitPolicy,
        logger: logging.Logger,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Drive exports with `api`, polling as `wait` says."""
        self._api = api
        self._wait = wait
        self._logger = logger
        self._sleep = sleep
        self._clock = clock

    def api_today(self, feed_id: str) -> datetime.date:
        """Today as the API counts it: the end of a one-day window of the feed.

        Windows end on the API's today, which can differ from this machine's date.
        """
        answer = self._api.post(SEARCH, {"feed_id": feed_id, "lookback_days": 1})
        end = answer.get("end_date") if isinstance(answer, dict) else None
        if end:
            return datetime.date.fromisoformat(str(end))
        return datetime.datetime.now(datetime.timezone.utc).date()

    def get(self, export_id: str) -> ExportSummary | None:
        """The current summary of one export, or None if the API does not know it."""
        answer = self._api.post(
            EXPORTS_LIST, {"export_ids": [export_id], "page": 1, "page_size": 1}
        )
        for item in answer.get("items", []):
            if item.get("export_id") == export_id:
                return ExportSummary(item)
        return None

    def exports_of(self, feed_id: str | None) -> Iterator[ExportSummary]:
        """Every export of a feed (or of the organization), newest first."""
        scope = {"feed_id": feed_id} if feed_id else {}

        def fetch(page: int) -> t.Any:
            return self._api.post(
                EXPORTS_LIST, {**scope, "page": page, "page_size": LIST_PAGE_SIZE}
            )

        return (ExportSummary(item) for item in envelope_items(fetch, LIST_PAGE_SIZE))

    def find_reusable(
        self,
        options: ExportOptions,
        start_date: datetime.date,
        end_date: datetime.date,
        *,
        exclude: t.Collection[str] = (),
    ) -> ExportSummary | None:
        """A building or ready export with the same options and window, if there is one.

        The list is newest first and a window ends on the day its export was made, so the
        search stops at the first export made before `end_date`.
        """
        for summary in self.exports_of(options.feed_id):
            if summary.end_date and summary.end_date < end_date.isoformat():
                return None
            if (
                summary.status in REUSABLE_STATUSES
                and summary.export_id not in exclude
                and summary.start_date == start_date.isoformat()
                and summary.end_date == end_date.isoformat()
                and options.made(summary)
            ):
                return summary
        return None

    def check_credits(self, options: ExportOptions) -> CreditCheck:
        """What creating the export would reserve, and what the pool has left; free."""
        count = self._api.post(EXPORTS_COUNT, options.body())
        credits = self._api.get(CREDITS)
        remaining = credits.get("records_remaining")
        if remaining is None and "records_total" in credits:
            remaining = (
                int(credits["records_total"])
                - int(credits.get("records_used") or 0)
                - int(credits.get("records_reserved") or 0)
            )
        total_rows = int(count.get("total_rows") or 0)
        required = count.get("records_required")
        return CreditCheck(
            records_required=total_rows if required is None else int(required),
            records_remaining=None if remaining is None else int(remaining),
            total_rows=total_rows,
        )

    def create(self, options: ExportOptions, check: CreditCheck) -> ExportSummary:
        """Create the export after a credit check; the API bills it from here on."""
        if check.records_remaining is not None and check.records_required > check.records_remaining:
            msg = (
                f"Not enough records credits to export feed {options.feed_id}: the export "
                f"needs {check.records_required:,} and {check.records_remaining:,} are left. "
                "Lower lookback_days or max_rows, or add credits."
            )
            raise CreditError(msg)
        summary = ExportSummary(self._api.post(EXPORTS, options.body()))
        self._logger.info(
            "Created %s, reserving %s records credits.",
            summary.describe(),
            f"{summary.records_reserved or check.records_required:,}",
        )
        return summary

    def wait_until_ready(self, export: ExportSummary) -> ExportSummary:
        """Poll until the export is ready, with growing intervals and two deadlines.

        `failed`, an unknown status, the overall deadline and the no-progress deadline
        each end the wait with an `ExportError`; the export itself stays on the API and
        the next run picks it up again.
        """
        wait = self._wait
        started = last_change = self._clock()
        last_progress = -1.0
        interval = min(wait.first_interval_seconds, wait.max_interval_seconds)
        current = export
        while True:
            if current.status == READY:
                return current
            if current.status == FAILED:
                reason = current.raw.get("build_error") or "no reason given"
                msg = f"{current.describe()} failed to build: {reason}."
                raise ExportError(msg)
            if current.status != BUILDING:
                msg = (
                    f"{current.describe()} reports status {current.status!r}; the tap knows "
                    "only building, ready and failed, so it stops rather than guess."
                )
                raise ExportError(msg)
            now = self._clock()
            if current.progress > last_progress:
                self._logger.info(
                    "%s is building: %.0f%% done.", current.describe(), current.progress * 100
                )
                last_progress, last_change = current.progress, now
            if now - started >= wait.timeout_seconds:
                msg = (
                    f"{current.describe()} was not ready after {wait.timeout_seconds:g} s "
                    f"(export_timeout_seconds), at {current.progress:.0%}. The next run "
                    "resumes the same export."
                )
                raise ExportError(msg)
            if now - last_change >= wait.stall_timeout_seconds:
                msg = (
                    f"{current.describe()} made no progress for "
                    f"{wait.stall_timeout_seconds:g} s (export_stall_timeout_seconds), stuck "
                    f"at {current.progress:.0%}. The next run resumes the same export."
                )
                raise ExportError(msg)
            deadline = min(started + wait.timeout_seconds, last_change + wait.stall_timeout_seconds)
            jittered = interval * (0.75 + random.random() / 2)  # noqa: S311 - not crypto
            self._sleep(max(0.0, min(jittered, deadline - now)))
            interval = min(interval * 2, wait.max_interval_seconds)
            refreshed = self.get(current.export_id)
            if refreshed is None:
                msg = f"{current.describe()} is no longer listed by the API."
                raise ExportError(msg)
            current = refreshed
