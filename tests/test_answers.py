"""What the tap takes of an answer (`answers`): a page's rows, and a body held to its cap.

Rows of text go through the strict decoder; rows holding other values (numbers, objects) are
read loosely and then judged against the caps, as every other answer is. A body is refused
one byte past its cap, whether its length is announced or found while reading.
"""

from __future__ import annotations

import inspect
import io

import pytest
import requests
import urllib3

from tap_contactbased import endpoints, limits
from tap_contactbased.answers import (
    BadAnswer,
    BodyCap,
    CappedBody,
    UnreadableBodyError,
    body_cap,
    decode_page,
    endpoint_of,
)
from tap_contactbased.errors import RefusedAnswerError

NESTED = (
    "nests JSON deeper than 256 levels (MAX_JSON_DEPTH), which no answer of the contract comes near"
)


def test_rows_of_text_are_read_with_the_nul_bytes_counted() -> None:
    assert decode_page(b'{"page": 1, "rows": [{"a": "x\x00y", "b": null}]}') == (
        [{"a": "xy", "b": None}],
        1,
    )


def test_rows_holding_other_values_are_read_as_they_are() -> None:
    body = b'{"rows": [{"a": 5, "b": {"c": [1.5, true]}}]}'

    assert decode_page(body) == ([{"a": 5, "b": {"c": [1.5, True]}}], 0)


@pytest.mark.parametrize(
    "body",
    [
        # Past the decoder's own recursion, in a field the strict decoder skips unread.
        b'{"rows": [], "note": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        # Within the decoder's reach, but past the cap: judged once the loose rows are read.
        b'{"rows": [{"a": ' + b"[" * 300 + b"]" * 300 + b"}]}",
    ],
    ids=["past the recursion limit", "300 levels in a row"],
)
def test_a_page_nested_past_the_cap_is_refused(body: bytes) -> None:
    with pytest.raises(BadAnswer) as refused:
        decode_page(body)

    assert str(refused.value) == NESTED


@pytest.mark.parametrize("body", [b'{"page": 1}', b'{"rows": null}'], ids=["absent", "null"])
def test_a_page_without_rows_is_unreadable(body: bytes) -> None:
    with pytest.raises(UnreadableBodyError, match="the page answer has no rows"):
        decode_page(body)


def response_of(body: bytes, *, announced: bool) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    if announced:
        response.headers["Content-Length"] = str(len(body))
    response.raw = urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False)
    return response


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "chunked"])
def test_a_body_of_exactly_the_cap_is_read_whole(announced: bool) -> None:
    response = BodyCap(8, "POST /x", "advice")(response_of(b"12345678", announced=announced))

    assert response.content == b"12345678"


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "chunked"])
def test_a_body_one_byte_past_the_cap_is_refused_and_let_go(announced: bool) -> None:
    response = response_of(b"123456789", announced=announced)
    raw = response.raw

    with pytest.raises(RefusedAnswerError) as refused:
        BodyCap(8, "POST /x", "Lower page_size.")(response).content  # noqa: B018

    assert str(refused.value) == (
        "POST /x: the answer is larger than 8 bytes, which the tap does not hold; it is not "
        "asked for again. Lower page_size."
    )
    assert raw.closed  # the connection is not read on


def test_a_body_found_past_the_cap_while_read_is_let_go_unread() -> None:
    response = response_of(b"x" * 300_000, announced=False)  # read in chunks of 64 KiB
    raw = response.raw

    with pytest.raises(RefusedAnswerError):
        BodyCap(100_000, "POST /x", "advice")(response).content  # noqa: B018

    assert raw.tell() < 300_000  # refused before the rest was read ...
    assert raw.closed  # ... and the rest never will be


def test_a_body_read_directly_is_counted_against_the_cap_too() -> None:
    cap = BodyCap(8, "POST /x", "advice")
    body = CappedBody(io.BytesIO(b"123456789"), cap)

    assert body.read(8) == b"12345678"
    with pytest.raises(RefusedAnswerError):
        body.read(1)


def test_a_capped_body_streams_in_the_chunks_urllib3_would_use() -> None:
    def default_amount(stream: object) -> object:
        return inspect.signature(stream).parameters["amt"].default  # type: ignore[arg-type]

    assert default_amount(CappedBody.stream) == default_amount(urllib3.HTTPResponse.stream)


def request_to(method: str, path: str) -> requests.PreparedRequest:
    return requests.Request(method, f"https://api.example.com{path}?key=secret").prepare()


def test_only_a_page_answer_may_be_as_large_as_a_page() -> None:
    page = body_cap(request_to("POST", endpoints.EXPORTS_PAGE))
    listing = body_cap(request_to("POST", endpoints.EXPORTS_LIST))
    fetched = body_cap(request_to("GET", endpoints.EXPORTS_PAGE))

    assert page.limit == limits.MAX_PAGE_BYTES > limits.MAX_ANSWER_BYTES
    assert listing.limit == fetched.limit == limits.MAX_ANSWER_BYTES
    assert listing.what == f"POST {endpoints.EXPORTS_LIST}"  # no query string, no host


def test_a_request_not_known_is_named_as_the_caller_says() -> None:
    assert endpoint_of(None) == "request"
    assert endpoint_of(None, "the download") == "the download"
