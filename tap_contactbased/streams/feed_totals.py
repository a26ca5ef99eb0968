"""The feed_totals stream: daily signal counts of each configured feed (free of charge)."""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_contactbased import endpoints, schemas
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.errors import left_out
from tap_contactbased.run import feed_cap

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context


class FeedTotalsStream(ContactBasedStream):
    """One record per feed and day of the lookback window (free of charge); a history."""

    name = "feed_totals"
    primary_keys = ("feed_id", "date")
    schema = schemas.FEED_TOTAL

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        settings = self.settings
        if not settings.feed_ids:
            self.logger.info("feed_ids is empty: feed_totals emits nothing.")
        for feed_id in settings.feed_ids:
            cap = feed_cap(self.run.feed(feed_id))
            lookback = min(settings.lookback_days, cap or settings.lookback_days)
            answer = self.client.post(
                endpoints.SEARCH,
                {"feed_id": feed_id, "lookback_days": lookback, "include_daily_counts": True},
            )
            for day in daily_counts(answer):
                yield {
                    "feed_id": feed_id,
                    "date": day["date"],
                    "count": day.get("count"),
                    "lookback_days": answer.get("lookback_days", lookback),
                    "start_date": answer.get("start_date"),
                    "end_date": answer.get("end_date"),
                }


def daily_counts(answer: t.Any) -> list[dict[str, t.Any]]:
    """The `daily_counts` of a search answer; an answer without them is refused, not empty."""
    days = answer.get("daily_counts") if isinstance(answer, dict) else None
    if not isinstance(days, list) or not all(isinstance(d, dict) and d.get("date") for d in days):
        raise left_out(
            f"POST {endpoints.SEARCH}",
            "daily_counts of dated entries",
            "the feed_totals stream stops rather than deliver nothing",
        )
    return days
