"""The record comparison of the tests sees everything the tap emits, `extra_columns` included."""

from __future__ import annotations

import typing as t

import pytest

from tap_contactbased.coercion import RowTyper
from tap_contactbased.schemas import export_row_schema
from tests.export_checks import by_key, expected_record
from tests.fake_api import CONTRACT_COLUMNS

FIXED = {"export_id": "exp_1", "feed_id": "feed"}
SERVED: dict[str, str | None] = {
    **dict.fromkeys(CONTRACT_COLUMNS, "text"),
    "cb_id": "id_0123456789abcdef",
    "intent_score": "high",  # not a number
    "signal_date": "2026-11-31",  # not a date
    "first_seen": "2026-11-20T08:00:00Z",
    "last_seen": "yesterday",  # not a timestamp
    "bundle_emails": "[1, 2]",  # JSON, but not an object
    "buying_stage": "evaluation",  # a column the catalog does not know
}
del SERVED["contact_id"], SERVED["postal_code"]  # the older id spelling; a column dropped


def test_the_expected_record_is_what_the_tap_makes_of_a_row_that_does_not_fit() -> None:
    properties = export_row_schema(bundles=["emails"])["properties"]
    typer = RowTyper(list(SERVED), properties, FIXED)

    emitted = typer.page_record(3, SERVED)

    expected = expected_record("exp_1", "feed", 3, SERVED)
    assert emitted == expected
    assert expected["extra_columns"] == {
        "intent_score": "high",
        "signal_date": "2026-11-31",
        "last_seen": "yesterday",
        "bundle_emails": "[1, 2]",
        "buying_stage": "evaluation",
    }
    assert expected["postal_code"] is None
    assert expected["contact_id"] == "id_0123456789abcdef"


def test_a_record_that_lost_the_text_of_a_value_does_not_compare_equal() -> None:
    expected = expected_record("exp_1", "feed", 1, SERVED)
    lost = {k: v for k, v in expected.items() if k != "extra_columns"}

    assert by_key([lost]) != by_key([expected])
    assert by_key([expected]) == {("exp_1", 1): expected}


def test_a_column_the_catalog_types_is_not_expected_among_the_extra_columns() -> None:
    expected = expected_record("exp_1", "feed", 1, SERVED, known_columns={"buying_stage"})

    assert expected["buying_stage"] == "evaluation"
    assert "buying_stage" not in expected["extra_columns"]


def test_a_comparison_that_leaves_a_property_out_says_why() -> None:
    record: dict[str, t.Any] = expected_record("exp_1", "feed", 1, SERVED)

    assert (
        "company_name"
        not in by_key([record], leave_out={"company_name": "the reason"})[("exp_1", 1)]
    )
    with pytest.raises(AssertionError, match="say why"):
        by_key([record], leave_out={"company_name": " "})
