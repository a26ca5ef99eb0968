"""The ContactBased API's paths, named once (docs/contactbased-api.md has the contract)."""

from __future__ import annotations

FEEDS = "/organization/feeds"
CREDITS = "/organization/credits"
FEED_LIMIT = "/organization/feed-limit"
SEARCH = "/intent/feeds/search"
FILTER_FIELDS = "/intent/feeds/filters/fields"
EXPORTS = "/intent/feeds/exports"
EXPORTS_PREVIEW = "/intent/feeds/exports/preview"
EXPORTS_COUNT = "/intent/feeds/exports/count"
EXPORTS_LIST = "/intent/feeds/exports/list"
EXPORTS_PAGE = "/intent/feeds/exports/page"
EXPORTS_DOWNLOAD_URL = "/intent/feeds/exports/download-url"
BUNDLES = "/enrich/bundles"
# Items asked for per page of the two lists the tap reads through.
FEEDS_PAGE_SIZE = 200
EXPORTS_LIST_PAGE_SIZE = 50


def enrich(bundle: str) -> str:
    return f"/enrich/{bundle}"
