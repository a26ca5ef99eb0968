"""The export endpoints as operations: today, list, find, count, credits, create.

The planner and the scheduler decide what to call when. Creating is the one billed call, so
it is never retried here: a create whose answer was lost may have happened.
"""

from __future__ import annotations

import datetime
import logging
import typing as t
from dataclasses import dataclass

from tap_contactbased import endpoints
from tap_contactbased.errors import ContractError
from tap_contactbased.pagination import envelope_items, listed_items
from tap_contactbased.summary import ExportStatus, ExportSummary, Match
from tap_contactbased.values import date_or_none, optional_int, timestamp_or_none

if t.TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence

    from tap_contactbased.api_client import ApiClient
    from tap_contactbased.summary import ExportOptions

MAX_IDS_PER_LIST = 200


class Poster(t.Protocol):
    """What a free preview is sent through: the run's client, or the probe's."""

    def post(self, path: str, body: Mapping[str, t.Any]) -> t.Any: ...


def preview(
    client: Poster, options: ExportOptions, *, rows: int = 1, skip_count: bool = True
) -> t.Any:
    """A free preview of the export `options` describe: its columns and first `rows` rows."""
    body = {**options.body(), "preview_rows": rows, "skip_count": skip_count}
    return client.post(endpoints.EXPORTS_PREVIEW, body)


def summary_of(answer: t.Any, endpoint: str) -> ExportSummary:
    """An export summary from an answer, refused when it does not name the export."""
    if not isinstance(answer, dict) or not answer.get("export_id"):
        msg = (
            f"{endpoint} answered without an export_id, so the tap cannot follow the export. "
            "Look at the exports stream before running again; report this difference."
        )
        raise ContractError(msg)
    return ExportSummary(answer)


@dataclass(frozen=True)
class Count:
    """What POST /exports/count says an export would hold and cost (free)."""

    total_rows: int | None
    records_required: int | None

    @property
    def cost(self) -> int | None:
        """Records credits the export would reserve, as far as the API says."""
        return self.records_required if self.records_required is not None else self.total_rows


@dataclass(frozen=True)
class Candidate:
    """An export of the same feed and window, and how sure the tap is that it is the same."""

    summary: ExportSummary
    match: Match
    unechoed: Sequence[str] = ()


class ExportLifecycle:
    """Export operations through one `ApiClient`."""

    def __init__(self, client: ApiClient, logger: logging.Logger) -> None:
        self._client = client
        self._logger = logger

    def api_today(self, feed_id: str) -> datetime.date:
        """Today as the API counts it: the last day of a one-day window of a feed.

        Windows end on the API's today, which can differ from this machine's date.
        """
        answer = self._client.post(endpoints.SEARCH, {"feed_id": feed_id, "lookback_days": 1})
        for name in ("end_date", "start_date"):  # a one-day window starts on its last day
            day = date_or_none(answer.get(name) if isinstance(answer, dict) else None)
            if day is not None:
                return day
        today = datetime.datetime.now(datetime.timezone.utc).date()
        self._logger.warning(
            "POST %s gave no end_date: taking today as this machine's UTC date, %s; exports "
            "that end earlier deliver through the day before their own end.",
            endpoints.SEARCH,
            today,
        )
        return today

    def summaries(self, export_ids: Collection[str]) -> dict[str, ExportSummary]:
        """The current summaries of some exports, in as few requests as the API allows.

        Exports the API does not list are missing from the result.
        """
        wanted = list(dict.fromkeys(export_ids))
        found: dict[str, ExportSummary] = {}
        for start in range(0, len(wanted), MAX_IDS_PER_LIST):
            ids = wanted[start : start + MAX_IDS_PER_LIST]
            answer = self._client.post(
                endpoints.EXPORTS_LIST, {"export_ids": ids, "page": 1, "page_size": len(ids)}
            )
            items = listed_items(answer, endpoints.EXPORTS_LIST)
            picked = {
                str(item["export_id"]): ExportSummary(item)
                for item in items
                if isinstance(item, dict) and item.get("export_id") in ids
            }
            found.update(picked)
            if len(picked) < len(items):
                # The API ignored the `export_ids` filter [assumed, docs/contactbased-api.md]:
                # look through every page.
                missing = set(wanted) - found.keys()
                for summary in self.exports_of(None):
                    if summary.export_id in missing:
                        found[summary.export_id] = summary
                        missing.discard(summary.export_id)
                        if not missing:
                            break
                return found
        return found

    def exports_of(self, feed_id: str | None) -> Iterator[ExportSummary]:
        """Every export of a feed (or of the organization), newest first."""
        scope = {"feed_id": feed_id} if feed_id else {}
        items = envelope_items(
            lambda page: self._client.post(
                endpoints.EXPORTS_LIST,
                {**scope, "page": page, "page_size": endpoints.EXPORTS_LIST_PAGE_SIZE},
            ),
            endpoints.EXPORTS_LIST_PAGE_SIZE,
            endpoints.EXPORTS_LIST,
        )
        for item in items:
            # An export the tap cannot name could be the one it is about to pay for again.
            summary = summary_of(item, f"POST {endpoints.EXPORTS_LIST}")
            if feed_id is None or summary.feed_id in (None, feed_id.lower()):
                yield summary

    def is_export_of(self, summary: ExportSummary, feed_id: str) -> bool:
        """Whether an export is one of the feed's: as its summary says, else as the feed's list.

        A summary without `feed_id` [assumed, docs/contactbased-api.md] is looked for among
        the exports the API lists for the feed (all of them, if it ignores that filter).
        """
        if summary.feed_id is not None:
            return summary.feed_id == feed_id.lower()
        return any(other.export_id == summary.export_id for other in self.exports_of(feed_id))

    def candidates(
        self,
        options: ExportOptions,
        start_date: datetime.date,
        end_date: datetime.date,
        *,
        exclude: Collection[str] = (),
    ) -> list[Candidate]:
        """Exports of the feed with the same window that are not failed, newest first.

        An export in a status the tap does not know counts: a run stops on it instead of
        paying for another. The list is newest first and a window ends on the day its
        export was made, so the search stops at the first export made before `end_date`.
        """
        start, end = start_date.isoformat(), end_date.isoformat()
        found: list[Candidate] = []
        for summary in self.exports_of(options.feed_id):
            if summary.end_date and summary.end_date < end:
                break
            if (
                summary.export_id in exclude
                or summary.status is ExportStatus.FAILED
                or summary.start_date != start
                or summary.end_date != end
            ):
                continue
            match, unechoed = options.compare(summary)
            if match is not Match.DIFFERENT:
                found.append(Candidate(summary, match, unechoed))
        return found

    def find_reusable(
        self,
        options: ExportOptions,
        start_date: datetime.date,
        end_date: datetime.date,
        *,
        exclude: Collection[str] = (),
    ) -> ExportSummary | None:
        """The newest export proven to have these options and window, if there is one.

        Exports that may be the same but do not echo every option are named in a warning
        and not reused: the tap reuses only what it can prove (or what its state names).
        """
        found = self.candidates(options, start_date, end_date, exclude=exclude)
        for candidate in found:
            if candidate.match is Match.SAME:
                return candidate.summary
        for candidate in found:
            self._logger.warning(
                "Export %s of feed %s has the same window but its summary does not echo %s, "
                "so the tap cannot prove it has the same options and does not reuse it.",
                candidate.summary.export_id,
                options.feed_id,
                ", ".join(candidate.unechoed),
            )
        return None

    def count(self, options: ExportOptions) -> Count:
        """What creating the export would hold and reserve (free)."""
        answer = self._client.post(endpoints.EXPORTS_COUNT, options.body())
        answer = answer if isinstance(answer, dict) else {}
        return Count(
            total_rows=optional_int(answer.get("total_rows")),
            records_required=optional_int(answer.get("records_required")),
        )

    def credits_remaining(self) -> int | None:
        """Records credits left in the organization's pool, when the API says."""
        credits = self._client.get(endpoints.CREDITS)
        credits = credits if isinstance(credits, dict) else {}
        remaining = optional_int(credits.get("records_remaining"))
        if remaining is not None:
            return remaining
        total = optional_int(credits.get("records_total"))
        if total is None:
            return None
        used = optional_int(credits.get("records_used")) or 0
        reserved = optional_int(credits.get("records_reserved")) or 0
        return total - used - reserved

    def create(self, options: ExportOptions) -> ExportSummary:
        """Create the export, once: the API bills it."""
        answer = self._client.json("POST", endpoints.EXPORTS, body=options.body(), retry=False)
        return summary_of(answer, f"POST {endpoints.EXPORTS}")

    def others_like(
        self, mine: ExportSummary, options: ExportOptions, *, within_seconds: float
    ) -> list[ExportSummary]:
        """Identical exports that someone else created around the time `mine` was created.

        The API offers no lock, so two runs sharing a feed can both create; this finds it.
        """
        if not (mine.start_date and mine.end_date):
            return []
        start = datetime.date.fromisoformat(mine.start_date)
        end = datetime.date.fromisoformat(mine.end_date)
        created = timestamp_or_none(mine.created_at)
        others = []
        for candidate in self.candidates(options, start, end, exclude={mine.export_id}):
            theirs = timestamp_or_none(candidate.summary.created_at)
            if (
                created is None
                or theirs is None
                or (abs((created - theirs).total_seconds()) <= within_seconds)
            ):
                others.append(candidate.summary)
        return others


def number_text(value: int | None) -> str:
    """`1,000` for messages about rows and credits, or what an unknown count reads as."""
    return "an unknown number of" if value is None else f"{value:,}"
