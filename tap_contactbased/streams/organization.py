"""Organization streams: feeds, credits, feed limit, enrichment bundles, filter fields."""

from __future__ import annotations

import sys
import typing as t

from tap_contactbased import endpoints, schemas
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.pagination import EnvelopePaginator

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class FeedsStream(ContactBasedStream):
    """Feeds the organization can access (GET /organization/feeds, every page)."""

    name = "feeds"
    path = endpoints.FEEDS
    primary_keys = ("feed_id",)
    records_jsonpath = "$.items[*]"
    schema = schemas.FEED
    page_size = 200

    @override
    def get_new_paginator(self) -> EnvelopePaginator:
        return EnvelopePaginator(start_value=1)

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: int | None
    ) -> dict[str, t.Any]:
        return {"page": next_page_token or 1, "page_size": self.page_size}


class SingleObjectStream(ContactBasedStream):
    """An endpoint that answers with one object: one record per run."""

    records_jsonpath = "$"

    @override
    def get_new_paginator(self) -> None:
        return None


class CreditsStream(SingleObjectStream):
    """The organization's records credit pool (GET /organization/credits)."""

    name = "credits"
    path = endpoints.CREDITS
    primary_keys = ()
    schema = schemas.CREDITS


class FeedLimitStream(SingleObjectStream):
    """The self-serve feed creation limit (GET /organization/feed-limit)."""

    name = "feed_limit"
    path = endpoints.FEED_LIMIT
    primary_keys = ()
    schema = schemas.FEED_LIMIT


class BundlesStream(SingleObjectStream):
    """Enrichment bundles and whether each is enabled (GET /enrich/bundles)."""

    name = "bundles"
    path = endpoints.BUNDLES
    primary_keys = ("key",)
    records_jsonpath = "$.bundles[*]"
    schema = schemas.BUNDLE


class FilterFieldsStream(SingleObjectStream):
    """Fields usable in consumer_filters (POST /intent/feeds/filters/fields)."""

    name = "filter_fields"
    path = endpoints.FILTER_FIELDS
    http_method = "POST"
    primary_keys = ("field",)
    records_jsonpath = "$.fields[*]"
    schema = schemas.FILTER_FIELD

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any]:
        return {}
