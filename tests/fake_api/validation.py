"""FastAPI-style errors and request validation.

Readers collect every problem of a body before failing, as pydantic does, so a 422 lists
all invalid fields at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error answer: `{"detail": detail}` with a status code."""

    def __init__(self, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> None:
        """Describe the answer."""
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def error_item(
    loc: list[str | int], msg: str, kind: str, value: Any = None, **ctx: Any
) -> dict[str, Any]:
    """Return one entry of a 422 `detail` list."""
    item: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return item


def invalid(errors: list[dict[str, Any]]) -> ApiError:
    """Return the 422 error for a list of error items."""
    return ApiError(422, errors)


_MISSING = object()


class BodyReader:
    """Reads typed fields of a JSON object, collecting validation errors."""

    def __init__(self, data: Any, where: str = "body") -> None:
        """Start reading; a non-object body is itself an error."""
        self.where = where
        self.errors: list[dict[str, Any]] = []
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        if data is None:
            self.errors.append(error_item([where], "Field required", "missing"))
        elif not isinstance(data, dict):
            self.errors.append(
                error_item(
                    [where],
                    "Input should be a valid dictionary or object to extract fields from",
                    "model_attributes_type",
                    data,
                )
            )

    def fail(
        self, name: str | list[str | int], msg: str, kind: str, value: Any, **ctx: Any
    ) -> None:
        """Record an error on a field (or a path below it)."""
        path = [name] if isinstance(name, str) else name
        self.errors.append(error_item([self.where, *path], msg, kind, value, **ctx))

    def has(self, name: str) -> bool:
        """Return True when the field is present and not null."""
        return self.data.get(name) is not None

    def raw(self, name: str) -> Any:
        """Return the field as it is, None when absent."""
        return self.data.get(name)

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING and required:
            self.fail(name, "Field required", "missing", None)
        return value

    def integer(
        self,
        name: str,
        default: int | None = None,
        *,
        required: bool = False,
        ge: int | None = None,
        le: int | None = None,
    ) -> int | None:
        """Read an integer field; null keeps the default unless the field is required."""
        value = self._get(name, required)
        if value is _MISSING or (value is None and not required):
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, "Input should be a valid integer", "int_type", value)
            return default
        if ge is not None and value < ge:
            self.fail(
                name,
                f"Input should be greater than or equal to {ge}",
                "greater_than_equal",
                value,
                ge=ge,
            )
        if le is not None and value > le:
            self.fail(
                name, f"Input should be less than or equal to {le}", "less_than_equal", value, le=le
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """Read a boolean field."""
        value = self._get(name, False)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, bool):
            self.fail(name, "Input should be a valid boolean", "bool_type", value)
            return default
        return value

    def string(self, name: str, *, required: bool = False, min_length: int = 0) -> str | None:
        """Read a string field."""
        value = self._get(name, required)
        if value is _MISSING or (value is None and not required):
            return None
        if not isinstance(value, str):
            self.fail(name, "Input should be a valid string", "string_type", value)
            return None
        if len(value) < min_length:
            self.fail(
                name,
                f"String should have at least {min_length} character",
                "string_too_short",
                value,
                min_length=min_length,
            )
        return value

    def uuid(self, name: str, *, required: bool = False) -> str | None:
        """Read a UUID field, returned in canonical form."""
        value = self._get(name, required)
        if value is _MISSING or (value is None and not required):
            return None
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
        self.fail(name, "Input should be a valid UUID", "uuid_parsing", value)
        return None

    def string_list(
        self,
        name: str,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> list[str] | None:
        """Read a list of strings, optionally each matching a pattern."""
        value = self._get(name, required)
        if value is _MISSING or (value is None and not required):
            return None
        if not isinstance(value, list):
            self.fail(name, "Input should be a valid list", "list_type", value)
            return None
        if len(value) < min_items:
            self.fail(
                name,
                f"List should have at least {min_items} item after validation, not {len(value)}",
                "too_short",
                value,
                field_type="List",
                min_length=min_items,
                actual_length=len(value),
            )
        if max_items is not None and len(value) > max_items:
            self.fail(
                name,
                f"List should have at most {max_items} items after validation, not {len(value)}",
                "too_long",
                None,
                field_type="List",
                max_length=max_items,
                actual_length=len(value),
            )
        good: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail([name, i], "Input should be a valid string", "string_type", item)
            elif pattern is not None and not pattern.fullmatch(item):
                self.fail(
                    [name, i],
                    f"String should match pattern '{pattern.pattern}'",
                    "string_pattern_mismatch",
                    item,
                    pattern=pattern.pattern,
                )
            else:
                good.append(item)
        return good

    def check(self) -> None:
        """Raise the 422 error when anything was invalid."""
        if self.errors:
            raise invalid(self.errors)


class QueryReader(BodyReader):
    """Reads query-string parameters (each one's last value) with the same rules."""

    def __init__(self, query: Mapping[str, list[str]]) -> None:
        """Start reading the parsed query string."""
        super().__init__({k: v[-1] for k, v in query.items()}, where="query")

    def integer(
        self,
        name: str,
        default: int | None = None,
        *,
        required: bool = False,
        ge: int | None = None,
        le: int | None = None,
    ) -> int | None:
        """Read an integer parameter; text that is not a number is `int_parsing`."""
        value = self.data.get(name)
        if isinstance(value, str) and not re.fullmatch(r"-?\d+", value.strip()):
            self.fail(
                name,
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
                value,
            )
            return default
        return super().integer(name, default, required=required, ge=ge, le=le)
