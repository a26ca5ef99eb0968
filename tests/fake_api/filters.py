"""Consumer filters: the field catalogue, body validation and row matching."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .data import COLUMN_INDEX, Row
from .validation import BodyReader

OPERATORS = ("eq", "neq", "in", "not_in", "gte", "lte", "between", "contains", "exists")
_OPERATORS_BY_TYPE = {
    "string": ("eq", "neq", "in", "not_in", "contains", "exists"),
    "number": ("eq", "neq", "in", "not_in", "gte", "lte", "between", "exists"),
    "date": ("eq", "neq", "gte", "lte", "between", "exists"),
}


@dataclass(frozen=True)
class FilterField:
    """A field that consumer filters may use."""

    field: str
    label: str
    category: str
    type: str

    @property
    def operators(self) -> tuple[str, ...]:
        """Operators this field accepts."""
        return _OPERATORS_BY_TYPE[self.type]

    def as_dict(self) -> dict[str, Any]:
        """Return the item served by POST /intent/feeds/filters/fields."""
        return {
            "field": self.field,
            "label": self.label,
            "category": self.category,
            "type": self.type,
            "operators": list(self.operators),
        }


FILTER_FIELDS: dict[str, FilterField] = {
    f.field: f
    for f in (
        FilterField("industry", "Industry", "company", "string"),
        FilterField("employee_range", "Employee range", "company", "string"),
        FilterField("revenue_range", "Revenue range", "company", "string"),
        FilterField("domain", "Company domain", "company", "string"),
        FilterField("company_name", "Company name", "company", "string"),
        FilterField("seniority", "Seniority", "person", "string"),
        FilterField("department", "Department", "person", "string"),
        FilterField("job_title", "Job title", "person", "string"),
        FilterField("country", "Country", "location", "string"),
        FilterField("state", "State or region", "location", "string"),
        FilterField("city", "City", "location", "string"),
        FilterField("topic", "Intent topic", "intent", "string"),
        FilterField("intent_score", "Intent score", "intent", "number"),
        FilterField("signal_date", "Signal date", "intent", "date"),
    )
}


@dataclass(frozen=True)
class Filter:
    """One consumer filter, validated."""

    field: str
    op: str
    value: Any

    def as_dict(self) -> dict[str, Any]:
        """Return the filter as it appears in an export summary."""
        return {"field": self.field, "op": self.op, "value": self.value}


def _scalar_ok(kind: str, value: Any) -> bool:
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "date":
        try:
            dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    return isinstance(value, str)


def _value_problem(kind: str, op: str, value: Any) -> str | None:
    """Return why a filter value does not fit its operator, or None."""
    if op == "exists":
        return None if isinstance(value, bool) else "exists takes a boolean"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return f"{op} takes a non-empty list"
        items = value
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return "between takes a list [low, high]"
        items = value
    else:
        items = [value]
    if not all(_scalar_ok(kind, item) for item in items):
        expected = "YYYY-MM-DD dates" if kind == "date" else f"{kind}s"
        return f"values of a {kind} field must be {expected}"
    return None


def read_filters(reader: BodyReader, name: str = "consumer_filters") -> tuple[Filter, ...]:
    """Read and validate the consumer_filters option."""
    raw = reader.raw(name)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.fail(name, "Input should be a valid list", "list_type", raw)
        return ()
    filters: list[Filter] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            reader.fail(
                [name, i],
                "Input should be a valid dictionary or object to extract fields from",
                "model_attributes_type",
                item,
            )
            continue
        field_name, op, value = item.get("field"), item.get("op"), item.get("value")
        spec = FILTER_FIELDS.get(field_name) if isinstance(field_name, str) else None
        if spec is None:
            known = ", ".join(FILTER_FIELDS)
            reader.fail(
                [name, i, "field"],
                f"Value error, unknown filter field {field_name!r}; known fields: {known}",
                "value_error",
                field_name,
            )
            continue
        if op not in OPERATORS:
            choices = ", ".join(f"'{o}'" for o in OPERATORS)
            reader.fail([name, i, "op"], f"Input should be {choices}", "enum", op)
            continue
        if op not in spec.operators:
            reader.fail(
                [name, i, "op"],
                f"Value error, operator {op!r} does not apply to {spec.type} field {spec.field!r}",
                "value_error",
                op,
            )
            continue
        problem = _value_problem(spec.type, op, value)
        if problem is not None:
            reader.fail([name, i, "value"], f"Value error, {problem}", "value_error", value)
            continue
        filters.append(Filter(spec.field, op, value))
    return tuple(filters)


def _normalise(kind: str) -> Callable[[Any], Any]:
    if kind == "number":
        return float
    if kind == "string":
        return lambda value: str(value).casefold()
    return str


def _compile_one(spec: Filter) -> Callable[[Row], bool]:
    position = COLUMN_INDEX[spec.field]
    norm = _normalise(FILTER_FIELDS[spec.field].type)
    op, value = spec.op, spec.value
    if op == "exists":
        return lambda row: (row[position] != "") is value
    if op == "contains":
        needle = norm(value)
        return lambda row: needle in norm(row[position])
    if op in ("in", "not_in"):
        wanted = {norm(v) for v in value}
        if op == "in":
            return lambda row: row[position] != "" and norm(row[position]) in wanted
        return lambda row: row[position] == "" or norm(row[position]) not in wanted
    if op == "neq":
        target = norm(value)
        return lambda row: row[position] == "" or norm(row[position]) != target
    low, high = {
        "eq": (value, value),
        "gte": (value, None),
        "lte": (None, value),
        "between": (value[0], value[1]) if isinstance(value, list) else (None, None),
    }[op]
    low_n = None if low is None else norm(low)
    high_n = None if high is None else norm(high)

    def in_range(row: Row) -> bool:
        cell = row[position]
        if cell == "":
            return False
        got = norm(cell)
        return (low_n is None or got >= low_n) and (high_n is None or got <= high_n)

    return in_range


def compile_filters(filters: tuple[Filter, ...]) -> Callable[[Row], bool]:
    """Return a predicate on contract rows that holds when every filter matches."""
    tests = [_compile_one(f) for f in filters]
    return lambda row: all(test(row) for test in tests)
