"""Paginated lists of the API: the envelope `{"items", "page", "page_size", "total"}`."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import PageNumberPaginator
from typing_extensions import override

from tap_contactbased.answers import endpoint_of
from tap_contactbased.errors import left_out

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    import requests


def listed_items(answer: t.Any, endpoint: str) -> list[t.Any]:
    """The `items` of a list envelope; an answer without them is refused, never read as empty.

    A list the tap cannot read must not look like an empty one: an empty exports list would
    make the tap pay for an export that already exists.
    """
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise left_out(
            endpoint,
            "an items list (the contract's list envelope)",
            "the tap stops rather than guess",
        )
    return items


def has_more_pages(answer: Mapping[str, t.Any], page: int, page_size: int) -> bool:
    """Whether a list envelope has another page.

    Without `total` [assumed possible, docs/contactbased-api.md], a short page is the last one.
    """
    items = answer.get("items") or []
    total = answer.get("total")
    if not items:
        return False
    if total is None:
        return len(items) >= page_size
    return page * page_size < int(total)


def envelope_items(
    fetch: Callable[[int], Mapping[str, t.Any]], page_size: int, endpoint: str
) -> Iterator[t.Any]:
    """Every item of a paginated list, `fetch(page)` returning one envelope (pages from 1)."""
    page = 1
    while True:
        answer = fetch(page)
        yield from listed_items(answer, endpoint)
        if not has_more_pages(answer, page, page_size):
            return
        page += 1


class EnvelopePaginator(PageNumberPaginator):
    """Pages of `{"items", "page", "page_size", "total"}`, numbered from 1."""

    @override
    def has_more(self, response: requests.Response) -> bool:
        body = response.json()
        listed_items(body, endpoint_of(response.request))
        page_size = int(body.get("page_size") or len(body.get("items") or []) + 1)
        return has_more_pages(body, int(body.get("page", self.current_value)), page_size)
