"""Property-based tests: value coercion, CSV parsing, incremental windows, state checks."""

from __future__ import annotations

import csv
import datetime
import io
import math
import typing as t

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_contactbased.coercion import (
    RowTyper,
    check_timestamp,
    to_boolean,
    to_number,
    to_object,
)
from tap_contactbased.errors import ConfigError
from tap_contactbased.schemas import EXTRA_COLUMNS, ROW_COLUMN_TYPES, export_row_schema
from tap_contactbased.state import check_state
from tap_contactbased.values import parse_timestamp
from tap_contactbased.windows import plan_window

PROPERTIES = export_row_schema(bundles=["emails"])["properties"]
FIXED = {"export_id": "exp_1", "feed_id": "f"}
STRING_COLUMNS = [
    c for c, s in ROW_COLUMN_TYPES.items() if "format" not in s and "number" not in s["type"]
]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip(value: float) -> None:
    assert to_number(repr(value)) == value


@given(st.text())
def test_number_is_finite_or_refused(text: str) -> None:
    try:
        value = to_number(text)
    except ValueError:
        return
    assert math.isfinite(value)


@given(st.text())
def test_boolean_never_turns_false_into_true(text: str) -> None:
    try:
        value = to_boolean(text)
    except ValueError:
        return
    if text.strip().lower() in {"false", "f", "no", "n", "0"}:
        assert value is False


@given(st.datetimes(timezones=st.just(datetime.timezone.utc)))
def test_timestamps_in_the_api_format_pass_their_check(moment: datetime.datetime) -> None:
    text = moment.isoformat().replace("+00:00", "Z")

    checked = check_timestamp(text)

    assert checked == moment
    assert parse_timestamp(text) == moment


@given(st.text())
def test_a_timestamp_check_refuses_or_reads_an_instant(text: str) -> None:
    try:
        checked = check_timestamp(text)
    except ValueError:
        return
    assert isinstance(checked, datetime.datetime)


header_strategy = st.lists(
    st.sampled_from([*ROW_COLUMN_TYPES, "cb_id", "bundle_emails", "buying_stage", "x_new"]),
    unique=True,
    min_size=1,
)


@given(header=header_strategy, data=st.data())
def test_every_row_becomes_a_record_of_the_schema(header: list[str], data: st.DataObject) -> None:
    if "contact_id" in header and "cb_id" in header:
        header.remove("cb_id")
    values = data.draw(st.lists(st.text(max_size=20), min_size=0, max_size=len(header) + 2))
    typer = RowTyper(header, PROPERTIES, FIXED)

    record = typer.csv_record(7, values)

    assert set(record) >= set(PROPERTIES) - {"extra_columns"}
    assert record["export_row"] == 7
    assert {k: record[k] for k in FIXED} == FIXED
    extra = record.get(EXTRA_COLUMNS) or {}
    assert EXTRA_COLUMNS not in record or extra  # absent rather than empty
    for index, column in enumerate(header):
        text = values[index] if index < len(values) else ""
        name = "contact_id" if column == "cb_id" else column
        if column in {"buying_stage", "x_new"}:
            assert extra[column] == (text or None)
        elif name in STRING_COLUMNS:
            assert record[name] == (text or None)
        elif record[name] is None and text:
            assert extra[name] == text  # refused by its type: kept as text


csv_values = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    min_size=3,
    max_size=3,
)


@given(st.lists(csv_values, max_size=20))
def test_csv_with_quotes_and_newlines_parses_back_exactly(rows: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    stream = io.TextIOWrapper(io.BytesIO(buffer.getvalue().encode()), encoding="utf-8", newline="")

    parsed = list(csv.reader(stream))

    assert parsed[0] == ["a", "b", "c"]
    assert parsed[1:] == rows


@given(
    start=st.dates(min_value=datetime.date(2020, 1, 1), max_value=datetime.date(2030, 1, 1)),
    gaps=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12),
    lookback=st.integers(min_value=1, max_value=90),
    cap=st.integers(min_value=2, max_value=90),
)
def test_incremental_runs_deliver_each_day_at_most_once_and_skip_only_what_they_report(
    start: datetime.date, gaps: list[int], lookback: int, cap: int
) -> None:
    lookback = min(lookback, cap)
    delivered: list[datetime.date] = []
    skipped = 0
    bookmark: datetime.date | None = None
    today = start
    first_day: datetime.date | None = None
    for gap in gaps:
        today += datetime.timedelta(days=gap)
        window = plan_window(
            mode="incremental",
            today=today,
            lookback_days=lookback,
            max_lookback_days=cap,
            delivered_through=bookmark,
        )
        if window is None:
            bookmark = bookmark or today - datetime.timedelta(days=1)
            first_day = first_day or today
            continue
        assert window.end_date == today
        assert window.lookback_days <= cap
        assert window.start_date == today - datetime.timedelta(days=window.lookback_days - 1)
        assert window.deliver_through == today - datetime.timedelta(days=1)
        first_day = first_day or window.start_date
        days = (window.deliver_through - window.start_date).days + 1
        delivered += [window.start_date + datetime.timedelta(days=n) for n in range(days)]
        skipped += window.skipped_days
        bookmark = window.deliver_through
    assert len(delivered) == len(set(delivered))
    if bookmark is not None and first_day is not None:
        span = (bookmark - first_day).days + 1
        assert len(delivered) + skipped == max(span, 0)


dates = st.dates().map(datetime.date.isoformat)
partition = st.fixed_dictionaries(
    {"context": st.fixed_dictionaries({"feed_id": st.uuids().map(str)})},
    optional={
        "delivered_through": dates,
        "last_export_id": st.text(min_size=1),
        "in_flight": st.fixed_dictionaries(
            {"export_id": st.text(min_size=1), "rows_done": st.integers(min_value=0)},
            optional={"deliver_through": st.one_of(st.none(), dates), "start_date": dates},
        ),
    },
)
tap_state = st.fixed_dictionaries(
    {
        "bookmarks": st.fixed_dictionaries(
            {"export_rows": st.fixed_dictionaries({"partitions": st.lists(partition, max_size=4)})},
            optional={
                "enrichment": st.fixed_dictionaries(
                    {},
                    optional={
                        "pending_exports": st.lists(
                            st.fixed_dictionaries({"export_id": st.text(min_size=1)}), max_size=3
                        )
                    },
                )
            },
        )
    }
)


@given(tap_state)
def test_every_state_the_tap_writes_is_accepted(state: dict[str, t.Any]) -> None:
    check_state(state)


@given(
    tap_state,
    st.sampled_from(["delivered_through", "rows_done", "export_id"]),
    st.sampled_from([-1, "x", None, 3.5, []]),
)
def test_a_corrupted_value_is_refused_with_its_place(
    state: dict[str, t.Any], key: str, bad: t.Any
) -> None:
    partitions = state["bookmarks"]["export_rows"]["partitions"]
    flight: dict[str, t.Any] = {"export_id": "e", "rows_done": 0}
    target: dict[str, t.Any] = {"context": {"feed_id": "f"}, "in_flight": flight}
    partitions.append(target)
    if key == "delivered_through":
        target[key] = bad
    else:
        flight[key] = bad
    if key == "export_id" and isinstance(bad, str):
        return  # any text is a valid id
    with pytest.raises(ConfigError, match=key):
        check_state(state)


# Examples at the edges the properties above rarely draw


@pytest.mark.parametrize(
    ("text", "expected"),
    [(" True", True), ("y", True), ("1", True), ("NO ", False), ("f", False), ("0", False)],
)
def test_a_boolean_is_read_from_its_usual_spellings(text: str, expected: bool) -> None:
    assert to_boolean(text) is expected


@pytest.mark.parametrize("text", ["maybe", "", "2"])
def test_any_other_boolean_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        to_boolean(text)


@pytest.mark.parametrize("text", ["NaN", "1e999", "-inf"])
def test_a_number_without_a_json_form_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        to_number(text)


def test_columns_a_catalog_types_as_integer_or_boolean_are_converted() -> None:
    properties: dict[str, dict[str, t.Any]] = {
        "count": {"type": ["integer", "null"]},
        "dated_count": {"type": ["integer", "null"], "format": "date"},  # no text: no date
        "flag": {"type": ["boolean", "null"]},
    }
    typer = RowTyper(list(properties), properties, {})

    assert typer.csv_record(1, ["12", "7.0", "no"]) == {
        "count": 12,
        "dated_count": 7,
        "flag": False,
        "export_row": 1,
    }
    assert typer.csv_record(2, ["12.5", "x", "yes"]) == {
        "count": None,
        "dated_count": None,
        "flag": True,
        "export_row": 2,
        EXTRA_COLUMNS: {"count": "12.5", "dated_count": "x"},
    }
    assert typer.invalid_values == {"count": 1, "dated_count": 1}


def test_a_json_object_is_refused_only_past_the_depth_cap_whatever_its_length() -> None:
    long_and_flat = '{"a": "' + "x" * 600 + '"}'
    assert to_object(long_and_flat) == {"a": "x" * 600}
    # 257 levels in the fewest characters: the object, then 256 lists.
    too_deep = '{"a":' + "[" * 256 + "]" * 256 + "}"
    with pytest.raises(ValueError, match="nested deeper than MAX_JSON_DEPTH"):
        to_object(too_deep)


def test_a_page_row_of_one_column_is_read_as_one_value() -> None:
    typer = RowTyper(["contact_id"], PROPERTIES, FIXED)

    record = typer.page_record(1, {"contact_id": "id_0123456789abcdef"})

    assert record["contact_id"] == "id_0123456789abcdef"
    assert EXTRA_COLUMNS not in record


def test_empty_page_values_are_null_and_values_past_the_header_kept_by_position() -> None:
    typer = RowTyper(["contact_id", "domain"], PROPERTIES, FIXED)

    assert typer.page_record(1, {"contact_id": "", "domain": "a.com"})["contact_id"] is None
    record = typer.csv_record(2, ["id_0123456789abcdef", "a.com", "x", "y"])
    assert record[EXTRA_COLUMNS] == {"column_3": "x", "column_4": "y"}


def test_a_page_value_without_json_text_is_kept_as_its_repr() -> None:
    typer = RowTyper(["intent_score"], PROPERTIES, FIXED)
    odd = object()

    record = typer.page_record(1, {"intent_score": odd})  # type: ignore[dict-item]

    assert record["intent_score"] is None
    assert record[EXTRA_COLUMNS] == {"intent_score": repr(odd)}
    listed = typer.page_record(2, {"intent_score": [1, 2]})  # type: ignore[dict-item]
    assert listed[EXTRA_COLUMNS] == {"intent_score": "[1,2]"}
