"""A versioned snapshot of export_rows: one version for all of its rows, kept until it is whole.

Kept in the state as `bookmarks.export_rows.snapshot`, `{"version": <ms since the epoch of the
run that began it>, "delivered": [<feed id>, ...]}` until every feed is delivered; the README's
"Versioned snapshots" says why and what a run killed at each point leaves.
"""

from __future__ import annotations

import typing as t

from tap_contactbased.errors import StateError
from tap_contactbased.values import is_int

if t.TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping, Sequence

KEY = "snapshot"
WHERE = f"bookmarks.export_rows.{KEY}"


class SnapshotVersion:
    """The snapshot a run of export_rows delivers: its version and the feeds done."""

    def __init__(
        self, stream_state: MutableMapping[str, t.Any], feed_ids: Sequence[str], started_at: int
    ) -> None:
        """Take the snapshot the state has open, or begin one with the version `started_at`."""
        record = stream_state.get(KEY)
        if record is None:
            record = stream_state[KEY] = {"version": started_at, "delivered": []}
        elif record["version"] > started_at:
            raise StateError(
                f"{WHERE}.version",
                f"{record['version']} is after this run's start ({started_at}), so no run "
                f"wrote it; remove {WHERE} to begin a new snapshot",
            )
        self._state = stream_state
        self._feed_ids = tuple(feed_ids)
        self.version: int = record["version"]
        #: The feeds of this run whose export an earlier run delivered in this snapshot.
        self.delivered_before = frozenset(str(f).lower() for f in record.get("delivered", ()))
        self.delivered_before &= frozenset(self._feed_ids)
        self.complete = False

    def note(self, delivered: Iterable[str]) -> None:
        """Add feeds whose export was delivered; once every feed is, the record goes."""
        record = self._state.get(KEY)
        if record is None:
            return
        done = [*record.get("delivered", ()), *delivered]
        record["delivered"] = list(dict.fromkeys(done))
        if set(self._feed_ids) <= set(record["delivered"]):
            del self._state[KEY]
            self.complete = True


def check_snapshot(value: t.Any) -> None:
    """Raise a `StateError` unless `value` has the shape of the record this module writes."""
    if not isinstance(value, dict):
        raise StateError(WHERE, "expected an object")
    version = value.get("version")
    if not is_int(version) or version <= 0:
        raise StateError(f"{WHERE}.version", f"expected a positive whole number, found {version!r}")
    delivered = value.get("delivered", [])
    if not isinstance(delivered, list) or not all(isinstance(f, str) for f in delivered):
        raise StateError(f"{WHERE}.delivered", "expected a list of feed ids")
