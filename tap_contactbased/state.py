"""A check of the state handed to the tap, before anything is done with it.

A state is what a target echoed from an earlier run. If it does not have the shape this tap
writes, resuming from it could skip or repeat days, so the run stops and says which value is
wrong instead of guessing.
"""

from __future__ import annotations

import datetime
import typing as t

from tap_contactbased.errors import ConfigError

ADVICE = "Fix the state, or remove it to start again from lookback_days."


def _fail(where: str, problem: str) -> t.NoReturn:
    msg = f"The state is malformed at {where}: {problem}. {ADVICE}"
    raise ConfigError(msg)


def _check_date(value: t.Any, where: str) -> None:
    try:
        datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        _fail(where, f"expected a date YYYY-MM-DD, found {value!r}")


def _check_export_rows(partition: t.Any, where: str) -> None:
    if not isinstance(partition, dict) or not isinstance(partition.get("context"), dict):
        _fail(where, "expected an object with a context")
    if "delivered_through" in partition:
        _check_date(partition["delivered_through"], f"{where}.delivered_through")
    flight = partition.get("in_flight")
    if flight is None:
        return
    if not isinstance(flight, dict) or not isinstance(flight.get("export_id"), str):
        _fail(f"{where}.in_flight", "expected an object with an export_id")
    rows_done = flight.get("rows_done")
    if not isinstance(rows_done, int) or isinstance(rows_done, bool) or rows_done < 0:
        _fail(f"{where}.in_flight.rows_done", f"expected a count of rows, found {rows_done!r}")
    if flight.get("deliver_through") is not None:
        _check_date(flight["deliver_through"], f"{where}.in_flight.deliver_through")


def check_state(state: t.Any) -> None:
    """Raise a `ConfigError` naming the first value of `state` this tap could not have written."""
    if not isinstance(state, dict):
        _fail("the top level", f"expected an object, found {type(state).__name__}")
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        _fail("bookmarks", "expected an object")
    for stream, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            _fail(f"bookmarks.{stream}", "expected an object")
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list):
            _fail(f"bookmarks.{stream}.partitions", "expected a list")
        if stream == "export_rows":
            for index, partition in enumerate(partitions):
                _check_export_rows(partition, f"bookmarks.export_rows.partitions[{index}]")
    pending = bookmarks.get("enrichment", {}).get("pending_exports", [])
    if not isinstance(pending, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("export_id"), str) for entry in pending
    ):
        _fail("bookmarks.enrichment.pending_exports", "expected a list of exports")
