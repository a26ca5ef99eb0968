"""Typing export values: from CSV or page text to the types of the row schema.

The SDK does not type strings (it would turn the text "false" into True and leave
numbers as text), so the tap types each value once, with converters chosen once per
export header from the schema. A value that does not fit its type becomes null and its
text is kept in `extra_columns`, so nothing is lost and the sync goes on.
"""

from __future__ import annotations

import datetime
import math
import operator
import sys
import typing as t
from collections import Counter
from dataclasses import dataclass

import msgspec

from tap_contactbased import limits
from tap_contactbased.schemas import BUNDLE_COLUMN_PREFIX, EXTRA_COLUMNS, record_name
from tap_contactbased.values import parse_timestamp

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator, Mapping, Sequence

RawRow = t.Any  # list[str] from the CSV, dict[str, str | None] from a page
Converter = t.Callable[[str], t.Any]
Check = t.Callable[[str], object]  # raises ValueError for an invalid value

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_json_decoder = msgspec.json.Decoder()


def to_number(text: str) -> float:
    """A finite JSON number; `NaN` and infinities have no JSON form."""
    value = float(text)
    if not math.isfinite(value):
        msg = f"not a finite number: {text!r}"
        raise ValueError(msg)
    return value


def to_integer(text: str) -> int:
    """An integer, also from text such as `12.0`."""
    try:
        return int(text)
    except ValueError:
        value = to_number(text)
        if not value.is_integer():
            raise
        return int(value)


def to_boolean(text: str) -> bool:
    """A boolean from the usual spellings; anything else is invalid, not True."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    msg = f"not a boolean: {text!r}"
    raise ValueError(msg)


# Dates and timestamps are checked, not rewritten: the API's ISO text is what targets read.
# The checks are C functions on Python 3.11+, which matters at two or three per row.
check_date: Check = datetime.date.fromisoformat
check_timestamp: Check = (
    datetime.datetime.fromisoformat if sys.version_info >= (3, 11) else parse_timestamp
)


def to_object(text: str) -> dict[str, t.Any]:
    """A JSON object from its text (the bundle columns), nested at most `MAX_JSON_DEPTH`.

    A number beyond a float (`1e999`) fails to decode. Nesting N levels takes 2N characters,
    so the depth is looked at only in a text longer than twice the cap: a common cell
    costs one comparison, not a walk.
    """
    try:
        value = _json_decoder.decode(text)
    except RecursionError:
        value = None
    if not isinstance(value, dict):
        msg = "not a JSON object nested at most MAX_JSON_DEPTH levels"
        raise ValueError(msg)
    depth = limits.MAX_JSON_DEPTH
    if len(text) > 2 * depth and limits.deeper_than(value, depth):
        msg = "a JSON object nested deeper than MAX_JSON_DEPTH"
        raise ValueError(msg)
    return value


def _text_of(value: t.Any) -> str:
    """The JSON text of a page value that is not text, for `extra_columns`."""
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def check_for(property_schema: Mapping[str, t.Any]) -> Check | None:
    """The check of a property whose text is its value once it is known to be valid."""
    types = property_schema.get("type", [])
    if "string" not in types or "object" in types:
        return None
    return {"date": check_date, "date-time": check_timestamp}.get(
        str(property_schema.get("format"))
    )


def converter_for(property_schema: Mapping[str, t.Any]) -> Converter | None:
    """The converter for a property whose value differs from its text, or None."""
    types = property_schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "object" in types:
        return to_object
    if "integer" in types:
        return to_integer
    if "number" in types:
        return to_number
    if "boolean" in types:
        return to_boolean
    return None


def column_picker(header: Sequence[str]) -> Callable[[Mapping[str, t.Any]], tuple[t.Any, ...]]:
    """Take a page row's values in header order in one C call (itemgetter).

    itemgetter returns a bare value for one key and needs at least one, hence the wrapper.
    """
    if len(header) > 1:
        return operator.itemgetter(*header)
    columns = tuple(header)
    return lambda row: tuple(row[column] for column in columns)


@dataclass
class Chunk:
    """Consecutive rows of an export as read, starting at `first_row` (1-based)."""

    first_row: int
    header: list[str]
    rows: Iterator[RawRow]
    form: t.Literal["csv", "page"]


class RowTyper:
    """Turns the rows of one export into typed records, planned once from its header.

    Per row, the common case runs at C speed (one list, one dict); Python-level work is
    left to the few columns with a converter.
    """

    def __init__(
        self,
        header: Sequence[str],
        properties: Mapping[str, Mapping[str, t.Any]],
        fixed: Mapping[str, t.Any],
    ) -> None:
        """`fixed`: the values every record of the export shares (export and feed ids)."""
        self.header = list(header)
        self.unknown_columns: list[str] = []
        # The record name of each column. A column the schema does not know (or a second
        # column of the same name) gets a placeholder that no property can have, and its
        # value moves to `extra_columns`.
        self._names: list[str] = []
        self._unknown: list[tuple[str, str]] = []  # (placeholder, column)
        self._converters: list[tuple[str, Converter]] = []
        self._checks: list[tuple[str, Check]] = []
        for index, column in enumerate(self.header):
            name = record_name(column)
            known = name in properties and name != EXTRA_COLUMNS and name not in fixed
            if not known or name in self._names:
                placeholder = f"\x00{index}"
                self.unknown_columns.append(column)
                self._unknown.append((placeholder, column))
                self._names.append(placeholder)
                continue
            self._names.append(name)
            if (check := check_for(properties[name])) is not None:
                self._checks.append((name, check))
            elif (convert := converter_for(properties[name])) is not None:
                self._converters.append((name, convert))
        present = set(self._names)
        self.missing_columns = [
            name
            for name in properties
            if name not in present
            and name not in fixed
            and name not in {"export_row", EXTRA_COLUMNS}
        ]
        self._template: dict[str, t.Any] = dict.fromkeys(self.missing_columns)
        self._template.update(fixed)
        self._width = len(self.header)
        self._pick = column_picker(self.header)
        self.invalid_values: Counter[str] = Counter()

    def warn_of_columns(self, name: str, logger: logging.Logger) -> None:
        """Warn of the columns export `name` has and the catalog does not, and the reverse."""
        if self.unknown_columns:
            logger.warning(
                "%s has columns the catalog does not know: %s. They are kept as text in "
                "extra_columns; run discovery again to type them.",
                name,
                ", ".join(self.unknown_columns),
            )
        missing = [c for c in self.missing_columns if not c.startswith(BUNDLE_COLUMN_PREFIX)]
        if missing:
            logger.warning(
                "%s lacks the columns %s; they are null in its records.", name, ", ".join(missing)
            )

    def report(self, name: str, logger: logging.Logger) -> None:
        """Warn of the values of export `name` that did not fit their type, by column."""
        for column, count in sorted(self.invalid_values.items()):
            logger.warning(
                "%s: %d value(s) of %s did not fit its type; they are null, with the text kept "
                "in extra_columns.",
                name,
                count,
                column,
            )

    def csv_record(self, row_number: int, values: Sequence[str]) -> dict[str, t.Any]:
        """A record from one CSV row (empty fields are null)."""
        return self._record(row_number, [value or None for value in values])

    def page_record(self, row_number: int, row: Mapping[str, str | None]) -> dict[str, t.Any]:
        """A record from one page row, keyed by column."""
        try:
            values = list(self._pick(row))
        except KeyError:  # a row without some column: null there
            values = [row.get(column) for column in self.header]
        if "" in values:
            values = [value or None for value in values]
        return self._record(row_number, values)

    def _record(self, row_number: int, values: list[str | None]) -> dict[str, t.Any]:
        extra: dict[str, str | None] | None = None
        if len(values) != self._width:
            extra = {f"column_{i + 1}": v for i, v in enumerate(values) if i >= self._width}
            values = values[: self._width] + [None] * (self._width - len(values))
        record: dict[str, t.Any] = dict(zip(self._names, values, strict=True))
        if self._unknown:
            extra = extra or {}
            for placeholder, column in self._unknown:
                extra[column] = record.pop(placeholder)
        record.update(self._template)
        record["export_row"] = row_number
        for name, check in self._checks:
            text = record[name]
            if text is not None:
                try:
                    check(text)
                except ValueError:
                    extra = self._set_aside(record, name, text, extra)
        for name, convert in self._converters:
            text = record[name]
            if text is not None:
                try:
                    record[name] = convert(text)
                except (ValueError, TypeError):  # TypeError: a page value that is not text
                    extra = self._set_aside(record, name, text, extra)
        if extra:
            record[EXTRA_COLUMNS] = extra
        return record

    def _set_aside(
        self,
        record: dict[str, t.Any],
        name: str,
        text: str,
        extra: dict[str, str | None] | None,
    ) -> dict[str, str | None]:
        """A value that does not fit its type: null in its column, its text kept aside."""
        self.invalid_values[name] += 1
        record[name] = None
        extra = extra if extra is not None else {}
        extra[name] = text if isinstance(text, str) else _text_of(text)
        return extra


class TypedChunk:
    """The records of one chunk, typed, without rows past the delivery's last day.

    Once its records have been read, `last_row` is the chunk's last row (1-based) and
    `emitted` the number of records it gave.
    """

    def __init__(
        self,
        chunk: Chunk,
        typer: RowTyper,
        through: str | None,
        contacts: dict[str, None] | None,  # where the records' contact ids are noted
    ) -> None:
        self.first_row = chunk.first_row
        self.last_row = chunk.first_row - 1
        self.emitted = 0
        self._chunk = chunk
        self._typer = typer
        self._through = through
        self._contacts = contacts

    def __iter__(self) -> Iterator[dict[str, t.Any]]:
        chunk, through, contacts = self._chunk, self._through, self._contacts
        to_record = self._typer.csv_record if chunk.form == "csv" else self._typer.page_record
        number = chunk.first_row
        emitted = 0
        for raw in chunk.rows:
            record = to_record(number, raw)
            number += 1
            if through is not None:
                day = record.get("signal_date")
                if day is not None and day > through:
                    continue
            if contacts is not None and (contact_id := record.get("contact_id")):
                contacts[contact_id] = None
            emitted += 1
            yield record
        self.last_row = number - 1
        self.emitted = emitted
