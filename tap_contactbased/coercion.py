"""Typing export values: from CSV or page text to the types of the row schema.

The SDK does not type strings (it would turn the text "false" into True and leave
numbers as text), so the tap types each value once, with converters chosen once per
export header from the schema. A value that does not fit its type becomes null and its
text is kept in `extra_columns`, so nothing is lost and the sync goes on.
"""

from __future__ import annotations

import datetime
import math
import typing as t
from collections import Counter

import msgspec

from tap_contactbased.schemas import CONTACT_ID_ALIASES, EXTRA_COLUMNS

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

Converter = t.Callable[[str], t.Any]

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


def to_date(text: str) -> str:
    """An ISO date, checked and normalised to `YYYY-MM-DD`."""
    return datetime.date.fromisoformat(text.strip()).isoformat()


def to_timestamp(text: str) -> str:
    """An ISO 8601 timestamp, checked; kept as sent when it is already RFC 3339."""
    stripped = text.strip()
    # Python 3.10 does not read a trailing Z.
    parsed = datetime.datetime.fromisoformat(
        stripped[:-1] + "+00:00" if stripped.endswith(("Z", "z")) else stripped
    )
    if parsed.tzinfo is None:
        # The contract says UTC; say so explicitly so that targets do not guess.
        return parsed.replace(tzinfo=datetime.timezone.utc).isoformat()
    return stripped


def to_object(text: str) -> dict[str, t.Any]:
    """A JSON object from its text (the bundle columns)."""
    value = _json_decoder.decode(text)
    if not isinstance(value, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    return value


def converter_for(property_schema: Mapping[str, t.Any]) -> Converter | None:
    """The converter for a property, or None when the text is the value."""
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
    if "string" in types:
        fmt = property_schema.get("format")
        if fmt == "date":
            return to_date
        if fmt == "date-time":
            return to_timestamp
    return None


def record_name(column: str) -> str:
    """The record property of a column: the id is `contact_id` whatever the API calls it."""
    return "contact_id" if column in CONTACT_ID_ALIASES else column


class RowTyper:
    """Turns the rows of one export into typed records, planned once from its header."""

    def __init__(
        self,
        header: Sequence[str],
        properties: Mapping[str, Mapping[str, t.Any]],
        fixed: Mapping[str, t.Any],
    ) -> None:
        """Plan the conversion of rows with this `header` into records of `properties`.

        `fixed` holds the values every record of the export shares (export and feed ids).
        """
        self.header = list(header)
        self._typed: list[tuple[int, str, Converter | None]] = []
        self.unknown_columns: list[str] = []
        self._unknown: list[tuple[int, str]] = []
        for index, column in enumerate(self.header):
            name = record_name(column)
            if name in properties and name != EXTRA_COLUMNS and name not in fixed:
                self._typed.append((index, name, converter_for(properties[name])))
            else:
                self.unknown_columns.append(column)
                self._unknown.append((index, column))
        present = {name for _, name, _ in self._typed}
        self.missing_columns = [
            name
            for name in properties
            if name not in present
            and name not in fixed
            and name not in {"export_row", EXTRA_COLUMNS}
        ]
        self._template: dict[str, t.Any] = dict.fromkeys(self.missing_columns)
        self._template.update(fixed)
        self.invalid_values: Counter[str] = Counter()

    def csv_record(self, row_number: int, values: Sequence[str]) -> dict[str, t.Any]:
        """A record from one CSV row (empty fields are null)."""
        return self._record(row_number, values.__getitem__, len(values))

    def page_record(self, row_number: int, row: Mapping[str, str | None]) -> dict[str, t.Any]:
        """A record from one page row, keyed by column."""
        header = self.header
        values = [row.get(column) for column in header]
        return self._record(row_number, values.__getitem__, len(values))

    def _record(
        self, row_number: int, value_at: Callable[[int], str | None], width: int
    ) -> dict[str, t.Any]:
        record = self._template.copy()
        record["export_row"] = row_number
        extra: dict[str, str | None] | None = None
        for index, name, convert in self._typed:
            text = value_at(index) if index < width else None
            if not text:
                record[name] = None
            elif convert is None:
                record[name] = text
            else:
                try:
                    record[name] = convert(text)
                except (ValueError, msgspec.DecodeError):
                    self.invalid_values[name] += 1
                    record[name] = None
                    extra = extra or {}
                    extra[name] = text
        if self._unknown or width > len(self.header):
            extra = extra or {}
            for index, column in self._unknown:
                extra[column] = (value_at(index) or None) if index < width else None
            for index in range(len(self.header), width):
                extra[f"column_{index + 1}"] = value_at(index) or None
        record[EXTRA_COLUMNS] = extra
        return record
