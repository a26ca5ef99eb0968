"""Every use of singer-sdk's private surfaces, in one place.

The tap leans on three things the SDK does not document as public. Each is pinned by a test
in tests/test_sdk_internals.py that fails when the SDK changes it, and the SDK itself is
pinned to `~=0.54.9`.

- `write_state_now`: a STATE message in the middle of a stream. The SDK writes state every
  10,000 records and at the end of a stream; an export page is the tap's unit of
  confirmation, and an export must be in the state before the tap waits for it to build.
- `SelectionWalkSkipped._generate_record_messages`: the SDK visits every property of every
  record to drop deselected ones, a third of the tap's CPU on export rows; with every
  property selected it drops nothing, so the walk is skipped.
- `BookmarkKeptByTap._increment_stream_state`: export_rows replicates incrementally with a
  bookmark per feed that the export jobs keep; the SDK's own bookmark needs a replication
  key, which an export row does not have.
"""

from __future__ import annotations

import datetime
import typing as t
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from collections.abc import Generator

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

    def _generate_record_messages(
        self, record: types.Record
    ) -> Generator[RecordMessage, None, None]:
        if not self.selects_every_property:
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=self.chunk_extracted_at,
                )


class BookmarkKeptByTap(Stream):
    """An INCREMENTAL stream whose bookmarks the tap writes itself (no replication key)."""

    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """The SDK's bookmark would need a replication key; the tap keeps its own."""


def move_to_end(streams: dict[str, Stream], name: str) -> dict[str, Stream]:
    """`streams` with `name` last: the SDK syncs streams in the order of `Tap.streams`."""
    if name in streams and next(reversed(streams)) != name:
        streams[name] = streams.pop(name)
    return streams
