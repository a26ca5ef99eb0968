"""A check of the state handed to the tap, before anything is done with it.

A state is what a target echoed from an earlier run. If it does not have the shape this tap
writes, resuming from it could skip or repeat days, so the run stops and says which value is
wrong instead of guessing.
"""

from __future__ import annotations

import typing as t

from tap_contactbased.job import InFlight, StateError, check_date


def _fail(where: str, problem: str) -> t.NoReturn:
    raise StateError(where, problem)


def _check_export_rows(partition: t.Any, where: str) -> None:
    if not isinstance(partition, dict) or not isinstance(partition.get("context"), dict):
        _fail(where, "expected an object with a context")
    if "delivered_through" in partition:
        check_date(partition["delivered_through"], f"{where}.delivered_through")
    if partition.get("in_flight") is not None:
        InFlight.from_state(partition["in_flight"], f"{where}.in_flight")


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
