"""What the probe may say about an answer: field names and the kinds of their values.

Values themselves never leave this module: a kind is `int`, `date`, `list[object]`, ...
"""

from __future__ import annotations

import datetime
import re
import typing as t
from dataclasses import dataclass, field

from tap_contactbased import values
from tap_contactbased.schemas import CONTACT_ID_ALIASES

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CANONICAL_ID, OLD_ID = CONTACT_ID_ALIASES
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")
LIST_SAMPLE = 50  # elements of a list whose kinds are described


def kind(value: t.Any) -> str:
    """The kind of a JSON value, without the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        if _DATE.fullmatch(value):
            return "date"
        if _TIMESTAMP.fullmatch(value):
            return "timestamp"
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        kinds = dict.fromkeys(kind(v) for v in value[:LIST_SAMPLE])
        return f"list[{' | '.join(kinds)}]"
    return type(value).__name__


def shape(obj: t.Any) -> str:
    """`name: kind` for each field of an object, in the order served."""
    if not isinstance(obj, dict):
        return kind(obj)
    if not obj:
        return "{}"
    return "{" + ", ".join(f"{name}: {kind(value)}" for name, value in obj.items()) + "}"


def merged_shape(objects: Iterable[t.Any]) -> str:
    """The fields of several objects of one kind, each with every kind it took."""
    kinds: dict[str, dict[str, None]] = {}
    others: dict[str, None] = {}
    for obj in objects:
        if not isinstance(obj, dict):
            others[kind(obj)] = None
            continue
        for name, value in obj.items():
            kinds.setdefault(name, {})[kind(value)] = None
    fields = ", ".join(f"{name}: {' | '.join(k)}" for name, k in kinds.items())
    described = [f"{{{fields}}}"] if kinds else []
    return " | ".join(described + list(others)) or "nothing"


def respelled(name: str) -> str:
    """The older spelling of a field name that holds the id."""
    return name.replace(CANONICAL_ID, OLD_ID)


@dataclass(frozen=True)
class FieldMatch:
    """How an object's field names compare with the contract's."""

    missing: list[str] = field(default_factory=list)
    respelled: list[str] = field(default_factory=list)  # the contract's names, seen as cb_id
    extra: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A clause on the differences; empty when there are none."""
        parts = [
            ("spelled with cb_id", self.respelled),
            ("missing", self.missing),
            ("not in the contract", self.extra),
        ]
        return "; ".join(f"{what}: {', '.join(names)}" for what, names in parts if names)


def match_fields(seen: Iterable[str], expected: Iterable[str]) -> FieldMatch:
    """Compare field names, taking `cb_id` spellings of `contact_id` names apart."""
    names, wanted = list(dict.fromkeys(seen)), list(expected)
    absent = [n for n in wanted if n not in names]
    old = [n for n in absent if CANONICAL_ID in n and respelled(n) in names]
    known = {*wanted, *(respelled(n) for n in old)}
    return FieldMatch(
        [n for n in absent if n not in old], old, [n for n in names if n not in known]
    )


def get_either(obj: Mapping[str, t.Any], name: str) -> t.Any:
    """A field under its contract name or its cb_id spelling."""
    return obj.get(name, obj.get(respelled(name)))


def as_date(value: t.Any) -> datetime.date | None:
    """The date a `YYYY-MM-DD` text names, or None (the contract's spelling only)."""
    return values.date_or_none(value) if isinstance(value, str) and _DATE.fullmatch(value) else None


def as_timestamp(value: t.Any) -> datetime.datetime | None:
    """The UTC time an ISO 8601 text of the contract's spelling names, or None."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    return values.timestamp_or_none(value)
