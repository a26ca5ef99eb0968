"""The exports stream: export summaries of the organization (POST /intent/feeds/exports/list)."""

from __future__ import annotations

import sys
import typing as t

from tap_contactbased import endpoints, schemas
from tap_contactbased.pagination import EnvelopePaginator
from tap_contactbased.streams.organization import ApiObjectStream

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class ExportsStream(ApiObjectStream):
    """Export summaries, newest first, with the options each was made with.

    No version: exports never expire on the API, and each is the receipt of the records
    credits it reserved, which the rows of `export_rows` name; none leaves the table.
    """

    name = "exports"
    path = endpoints.EXPORTS_LIST
    http_method = "POST"
    primary_keys = ("export_id",)
    records_jsonpath = "$.items[*]"
    schema = schemas.EXPORT_SUMMARY

    @override
    def get_new_paginator(self) -> EnvelopePaginator:
        return EnvelopePaginator(start_value=1)

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any]:
        return {"page": next_page_token or 1, "page_size": endpoints.EXPORTS_LIST_PAGE_SIZE}
