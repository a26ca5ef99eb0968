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
    from collections.abc import Mapping, Sequence

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
        """Plan the conversion of rows with this `header` into records of `properties`.

        `fixed` holds the values every record of the export shares (export and feed ids).
        """
        self.header = list(header)
        self.unknown_columns: list[str] = []
        # The record name of each column. A column the schema does not know (or a second
        # column of the same name) gets a placeholder that no property can have, and its
        # value moves to `extra_columns`.
        self._names: list[str] = []
        self._unknown: list[tuple[str, str]] = []  # (placeholder, column)
        self._converters: list[tuple[str, Converter]] = []
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
            convert = converter_for(properties[name])
            if convert is not None:
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
        self.invalid_values: Counter[str] = Counter()

    def csv_record(self, row_number: int, values: Sequence[str]) -> dict[str, t.Any]:
        """A record from one CSV row (empty fields are null)."""
        return self._record(row_number, [value or None for value in values])

    def page_record(self, row_number: int, row: Mapping[str, str | None]) -> dict[str, t.Any]:
        """A record from one page row, keyed by column."""
        return self._record(row_number, [row.get(column) or None for column in self.header])

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
        for name, convert in self._converters:
            text = record[name]
            if text is not None:
                try:
                    record[name] = convert(text)
                except (ValueError, msgspec.DecodeError):
                    self.invalid_values[name] += 1
                    record[name] = None
                    extra = extra or {}
                    extra[name] = text
        if extra:
            record[EXTRA_COLUMNS] = extra
        return record
