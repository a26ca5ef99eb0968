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
- `SelectionWalkSkipped.mapped_records`: what the RECORD messages of a record would carry
  (stream alias and mapped record, deselected properties dropped), without the messages,
  for the BATCH files of export_rows; the SDK's BATCH path writes records unmapped.
- `announce_batch`: a BATCH message for one stream alias. The SDK's `_write_batch_message`
  announces one manifest under every alias of the stream's maps; a file of export_rows holds
  the records of one alias only. `SDKBatchMessage`, `BatchConfig` and
  `BaseBatchFileEncoding` live in the private `helpers._batch` (the last two are the types
  of the public `Stream.get_batches`).
- `move_to_end`: `Tap.sync_all` syncs streams in the order of `Tap.streams`, and then calls
  every stream's `log_sync_costs` in that order; enrichment, last, ends the run there.
"""

from __future__ import annotations

import datetime
import sys
import typing as t
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, SDKBatchMessage
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

# The batch types live in a private module: the tap imports them from here.
__all__ = [
    "BaseBatchFileEncoding",
    "BatchConfig",
    "BookmarkKeptByTap",
    "SelectionWalkSkipped",
    "announce_batch",
    "move_to_end",
    "write_state_now",
]

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers import types


def write_state_now(stream: Stream) -> None:
    """Write a STATE message with the tap's current state, now."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def announce_batch(
    stream: Stream, alias: str, encoding: BaseBatchFileEncoding, manifest: list[str]
) -> None:
    """Write a BATCH message announcing the files of `manifest` for the stream `alias`."""
    stream._tap.write_message(SDKBatchMessage(stream=alias, encoding=encoding, manifest=manifest))
    stream.state_manager.is_flushed = False


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

    @override
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

    @cached_property
    def passes_records_unchanged(self) -> bool:
        """Whether records go out as they are: every property selected, no map, no flattening."""
        maps = self.stream_maps
        return (
            self.selects_every_property
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    def mapped_records(self, records: Iterable[types.Record]) -> Iterator[tuple[str, types.Record]]:
        """(stream alias, record) of each RECORD message `records` would make, in order."""
        if not self.selects_every_property:
            for record in records:
                for message in super()._generate_record_messages(record):
                    yield message.stream, message.record
            return
        maps = [(stream_map.stream_alias, stream_map.transform) for stream_map in self.stream_maps]
        for record in records:
            for alias, transform in maps:
                mapped = transform(record)
                if mapped is not None:
                    yield alias, mapped


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
