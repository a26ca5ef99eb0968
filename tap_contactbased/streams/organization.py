"""Organization streams: feeds, credits, feed limit, enrichment bundles, filter fields, exports."""

from __future__ import annotations

import datetime
import email.utils
import typing as t

from typing_extensions import override

from tap_contactbased import endpoints, schemas
from tap_contactbased.answers import endpoint_of
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.errors import left_out
from tap_contactbased.pagination import EnvelopePaginator

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context


def reading_day(response: requests.Response) -> str:
    """The UTC day a response was answered on, by the API's `Date` header, else this machine's."""
    try:
        answered = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        answered = datetime.datetime.now(datetime.timezone.utc)
    if answered.tzinfo is None:  # an obsolete date form without a zone: GMT by RFC 9110
        answered = answered.replace(tzinfo=datetime.timezone.utc)
    return answered.astimezone(datetime.timezone.utc).date().isoformat()


class ApiObjectStream(ContactBasedStream):
    """Records that are the API's own objects, with the fields it adds kept, not dropped.

    Fields the schema does not name go into `extra_fields`: many targets fail on a
    top-level field that the SCHEMA message does not declare.
    """

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        return schemas.fold_new_fields(row, self.schema)


class ListedStream(ApiObjectStream):
    """The items of a paginated list envelope, every page."""

    records_jsonpath = "$.items[*]"

    @override
    def get_new_paginator(self) -> EnvelopePaginator:
        return EnvelopePaginator(start_value=1)


class FeedsStream(ListedStream):
    """Feeds the organization can access (GET /organization/feeds)."""

    name = "feeds"
    path = endpoints.FEEDS
    primary_keys = ("feed_id",)
    replaced_by_each_sync = True  # a feed deleted upstream leaves the table
    schema = schemas.FEED

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: int | None
    ) -> dict[str, t.Any]:
        return {"page": next_page_token or 1, "page_size": endpoints.FEEDS_PAGE_SIZE}


class UnpaginatedStream(ApiObjectStream):
    """An endpoint that answers in one page: one object, or one list of records."""

    records_jsonpath = "$"
    # The field of the answer that holds the list of records, when the records are a list.
    records_list: str | None = None

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        """The records; an answer without its list stops the stream rather than emit none."""
        if self.records_list is not None:
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get(self.records_list), list):
                raise left_out(
                    endpoint_of(response.request),
                    f"its {self.records_list} list",
                    f"the {self.name} stream stops rather than deliver nothing",
                )
        yield from super().parse_response(response)


class SnapshotStream(UnpaginatedStream):
    """A reading of a changing object, keyed by its UTC day: a daily run upserts one row."""

    primary_keys = ("snapshot_date",)

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        day = reading_day(response)
        for record in super().parse_response(response):
            yield {**record, "snapshot_date": day}


class CreditsStream(SnapshotStream):
    """The organization's records credit pool (GET /organization/credits)."""

    name = "credits"
    path = endpoints.CREDITS
    schema = schemas.CREDITS


class FeedLimitStream(SnapshotStream):
    """The self-serve feed creation limit (GET /organization/feed-limit)."""

    name = "feed_limit"
    path = endpoints.FEED_LIMIT
    schema = schemas.FEED_LIMIT


class BundlesStream(UnpaginatedStream):
    """Enrichment bundles and whether each is enabled (GET /enrich/bundles)."""

    name = "bundles"
    path = endpoints.BUNDLES
    primary_keys = ("key",)
    replaced_by_each_sync = True  # a bundle the API no longer offers leaves the table
    records_jsonpath = "$.bundles[*]"
    records_list = "bundles"
    schema = schemas.BUNDLE


class FilterFieldsStream(UnpaginatedStream):
    """Fields usable in consumer_filters (POST /intent/feeds/filters/fields)."""

    name = "filter_fields"
    path = endpoints.FILTER_FIELDS
    http_method = "POST"
    primary_keys = ("field",)
    replaced_by_each_sync = True  # a field that goes away leaves the table
    records_jsonpath = "$.fields[*]"
    records_list = "fields"
    schema = schemas.FILTER_FIELD

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any]:
        return {}


class ExportsStream(ListedStream):
    """Export summaries, newest first (POST /intent/feeds/exports/list); none leaves the table."""

    name = "exports"
    path = endpoints.EXPORTS_LIST
    http_method = "POST"
    primary_keys = ("export_id",)
    schema = schemas.EXPORT_SUMMARY

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any]:
        return {"page": next_page_token or 1, "page_size": endpoints.EXPORTS_LIST_PAGE_SIZE}
