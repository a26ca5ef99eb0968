"""Decoding a page answer (`answers.decode_page`): the fast strict way, or the loose one.

Rows of text go through the strict decoder; rows holding other values (numbers, objects) are
read loosely and then judged against the caps, as every other answer is.
"""

from __future__ import annotations

import pytest

from tap_contactbased.answers import BadAnswer, UnreadableBodyError, decode_page

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
