"""Every use of singer-sdk's private or implied behaviour, in one place.

The tap leans on things the SDK does not document as public. Each is pinned by a test in
tests/test_sdk_internals.py that fails when the SDK changes it, and the SDK itself is
pinned to `~=0.54.9`.

- `write_state_now`: a STATE message in the middle of a stream. The SDK writes state every
  10,000 records and at the end of a stream; an export page is the tap's unit of
  confirmation, and an export must be in the state before the tap waits for it to build.
- `SelectionWalkSkipped._generate_record_messages`: the SDK visits every property of every
  record to drop deselected ones, a large share of the tap's CPU per export row (README,
  Performance); with every property selected it drops nothing, so the walk is skipped.
- `BookmarkKeptByTap._increment_stream_state`: export_rows replicates incrementally with a
  bookmark per feed that the export jobs keep; the SDK's own bookmark needs a replication
  key, which an export row does not have.
- `move_to_end`: `Tap.sync_all` syncs streams in the order of `Tap.streams`, and then calls
  every stream's `log_sync_costs` in that order; enrichment, last, ends the run there.
"""

from __future__ import annotations

import datetime
import sys
import typing as t
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from singer_sdk.helpers import types


def write_state_now(stream: Stream) -> None:
    """Write a STATE message with the tap's current state, now."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


class SelectionWalkSkipped(Stream):
    """Record messages without the SDK's per-record selection walk when it is moot.

    `selects_every_property` must be False when any property is deselected; conformance
    must be off (`TypeConformanceLevel.NONE`), since the walk is where the SDK applies it.
    """

    # One timestamp for the rows extracted together (set by the stream per chunk).
    chunk_extracted_at: datetime.datetime | None = None

    @cached_property
    def selects_every_property(self) -> bool:
        """Whether the catalog keeps every property of the stream."""
        return all(self.mask.values())

    @cached_property
    def _map_steps(self) -> list[tuple[str, Callable[[types.Record], types.Record | None] | None]]:
        """(alias, transform) per stream map; None where the map gives the record back as is.

        The SDK's default map returns the record unchanged unless flattening is on.
        """
        steps: list[tuple[str, Callable[[types.Record], types.Record | None] | None]] = []
        for stream_map in self.stream_maps:
            unchanged = type(stream_map) is SameRecordTransform and not (
                stream_map.flattening_options and stream_map.flattening_enabled
            )
            steps.append((stream_map.stream_alias, None if unchanged else stream_map.transform))
        return steps

    @override
    def _generate_record_messages(
        self, record: types.Record
    ) -> Generator[RecordMessage, None, None]:
        if not self.selects_every_property:
            yield from super()._generate_record_messages(record)
            return
        for alias, transform in self._map_steps:
            mapped = record if transform is None else transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=self.chunk_extracted_at,
                )


class BookmarkKeptByTap(Stream):
    """An INCREMENTAL stream whose bookmarks the tap writes itself (no replication key)."""

    @override
    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """The SDK's bookmark would need a replication key; the tap keeps its own."""


def move_to_end(streams: dict[str, Stream], name: str) -> dict[str, Stream]:
    """`streams` with `name` last: the SDK syncs streams in the order of `Tap.streams`."""
    if name in streams and next(reversed(streams)) != name:
        streams[name] = streams.pop(name)
    return streams
