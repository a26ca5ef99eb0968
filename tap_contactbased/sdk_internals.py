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
- `mapped_records`, `records_to_batch`: what the RECORD messages of a record would carry
  (stream alias and mapped record, deselected properties dropped), without the messages,
  for BATCH files. The SDK's `get_batches` batches the records `_sync_records` yields,
  before its stream maps and its selection (a PII stream map would not apply).
- `announce_batch`: a BATCH message for one stream alias. The SDK's `_write_batch_message`
  announces one manifest under every alias of the stream's maps; a file of export_rows holds
  the records of one alias only. `SDKBatchMessage`, `BatchConfig` and
  `BaseBatchFileEncoding` live in the private `helpers._batch` (the last two are the types
  of the public `Stream.get_batches`).
- `storage_location`: the filesystem and folder of a `batch_config.storage`, resolved as the
  SDK resolves them (so that `StorageTarget.get_url` names the files written there).
  `StorageTarget.open` writes inside a transaction on the whole filesystem, which a failure
  inside its block leaves open (fsspec filesystems are cached per process), and puts local
  files in the system's temporary folder until the transaction ends.
- `move_to_end`: `Tap.sync_all` syncs streams in the order of `Tap.streams`, and then calls
  every stream's `log_sync_costs` in that order; enrichment, last, ends the run there.
- `ActivatedAtEnd`: the SDK activates a FULL_TABLE stream's version when its sync starts
  (`Stream.sync`, before the first record), so a run that dies midway would leave a target
  with the old rows deactivated and only part of the new ones. Its activation is switched
  off (`emit_activate_version_messages`); the version goes into `_stream_version`, which
  the SDK's RECORD messages read, and the SDK's `_write_activate_version_message` (one
  message per stream alias) is called after `_sync_records` (its final STATE written) or
  `_sync_batches` returned.
"""

from __future__ import annotations

import datetime
import sys
import typing as t
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.helpers._batch import (
    BaseBatchFileEncoding,
    BatchConfig,
    SDKBatchMessage,
    StorageTarget,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

from tap_contactbased.writer import RecordBufferingWriter

# The batch types live in a private module: the tap imports them from here.
__all__ = [
    "VERSION_COLUMN",
    "ActivatedAtEnd",
    "BaseBatchFileEncoding",
    "BatchConfig",
    "BookmarkKeptByTap",
    "SelectionWalkSkipped",
    "announce_batch",
    "direct_record_writer",
    "mapped_records",
    "move_to_end",
    "passes_records_unchanged",
    "records_to_batch",
    "storage_location",
    "stream_version",
    "write_state_now",
]

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

    from singer_sdk.helpers import types

# The setting, by the SDK's name for it; read by `ActivatedAtEnd`, declared in settings.py.
EMIT_ACTIVATE_VERSION = "emit_activate_version_messages"
# Where SDK targets keep a RECORD's version (the SDK's record metadata). A BATCH message has
# no version: each record of a file carries it in this field instead.
VERSION_COLUMN = "_sdc_table_version"


def write_state_now(stream: Stream) -> None:
    """Write a STATE message with the tap's current state, now."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def direct_record_writer(stream: Stream) -> RecordBufferingWriter | None:
    """The writer a stream may hand its records to itself, past the SDK's per-record loop.

    The SDK's loop costs several microseconds a record (its checks, a message object, the
    metrics), much of the tap's own cost per export row. It may be left out only where it
    would change nothing: the records go out as they are (`passes_records_unchanged`), no
    dry run caps the records (`ABORT_AT_RECORD_COUNT`), and the tap writes with its own
    writer. The stream then counts the records on the counter the SDK logs.
    """
    writer = stream._tap.message_writer
    if (
        isinstance(writer, RecordBufferingWriter)
        and stream.ABORT_AT_RECORD_COUNT is None
        and passes_records_unchanged(stream)
    ):
        return writer
    return None


def stream_version(stream: Stream) -> int | None:
    """The version the SDK puts in the stream's RECORD messages."""
    return stream._stream_version


def announce_batch(
    stream: Stream, alias: str, encoding: BaseBatchFileEncoding, manifest: list[str]
) -> None:
    """Write a BATCH message announcing the files of `manifest` for the stream `alias`."""
    stream._tap.write_message(SDKBatchMessage(stream=alias, encoding=encoding, manifest=manifest))
    stream.state_manager.is_flushed = False


def storage_location(storage: StorageTarget) -> tuple[t.Any, str]:
    """The fsspec filesystem and root path of `storage`, the root created if missing."""
    root = storage._root_path
    root.mkdir(parents=True, exist_ok=True)
    return root.fs, root.path


def passes_records_unchanged(stream: Stream) -> bool:
    """Whether RECORD messages carry the stream's records as they are.

    That is: every property selected, and one stream map, the SDK's identity, unflattened.
    """
    maps = stream.stream_maps
    return (
        len(maps) == 1
        and type(maps[0]) is SameRecordTransform
        and maps[0].stream_alias == stream.name
        and not maps[0].flattening_enabled
        and all(stream.mask.values())
    )


def mapped_records(
    stream: Stream, records: Iterable[types.Record]
) -> Iterator[tuple[str, types.Record]]:
    """(stream alias, record) of each RECORD message `records` would make, in order."""
    if not all(stream.mask.values()):
        for record in records:
            # The SDK's own: it drops deselected properties, then applies the maps.
            for message in Stream._generate_record_messages(stream, record):
                yield message.stream, message.record
        return
    maps = [(stream_map.stream_alias, stream_map.transform) for stream_map in stream.stream_maps]
    for record in records:
        for alias, transform in maps:
            mapped = transform(record)
            if mapped is not None:
                yield alias, mapped


def records_to_batch(stream: Stream, context: types.Context | None) -> Iterator[types.Record]:
    """The records of a sync as the SDK's `get_batches` takes them: no message written."""
    return stream._sync_records(context, write_messages=False)


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


class ActivatedAtEnd(Stream):
    """A stream whose version is activated after its last STATE: never at its start.

    With `emit_activate_version_messages` on, a stream whose `run_version` is not None sends
    that version in every RECORD message (and BATCH file record) of the sync, and one
    ACTIVATE_VERSION of it once the sync has ended without an error and `activates` agrees.
    A sync that fails, a dry run (`--test`) and a stream without a version activate nothing.
    """

    #: Whether each sync's records are the whole table: rows it does not send again are
    #: gone upstream. Streams that keep a history leave it False.
    replaced_by_each_sync: t.ClassVar[bool] = False

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """Never the SDK's own activation, at the start of the sync."""
        return False

    @property
    def versions_asked(self) -> bool:
        """Whether the settings ask for versioned full-table loads."""
        return bool(self.config.get(EMIT_ACTIVATE_VERSION))

    @property
    def new_version(self) -> int:
        """A version newer than any earlier run's: this run's start, in ms since the epoch."""
        return self._tap.initialized_at

    def run_version(self) -> int | None:
        """The version of this sync's records, or None: no version."""
        if self.replaced_by_each_sync and self.versions_asked:
            return self.new_version
        return None

    def activates(self) -> bool:
        """Whether the version is activated, the sync having ended without an error."""
        return True

    @override
    def _sync_records(
        self, context: types.Context | None = None, *, write_messages: bool = True
    ) -> Generator[types.Record, t.Any, t.Any]:
        if not write_messages:  # records for BATCH files, inside `_sync_batches`
            yield from super()._sync_records(context, write_messages=False)
            return
        self._stream_version = self.run_version()
        yield from super()._sync_records(context, write_messages=True)
        self._activate()

    @override
    def _sync_batches(
        self, batch_config: BatchConfig, context: types.Context | None = None
    ) -> None:
        self._stream_version = self.run_version()
        super()._sync_batches(batch_config, context)
        self._activate()

    def _activate(self) -> None:
        version = self._stream_version
        if version is not None and self.ABORT_AT_RECORD_COUNT is None and self.activates():
            self._write_activate_version_message(version)


def move_to_end(streams: dict[str, Stream], name: str) -> dict[str, Stream]:
    """`streams` with `name` last: the SDK syncs streams in the order of `Tap.streams`."""
    if name in streams and next(reversed(streams)) != name:
        streams[name] = streams.pop(name)
    return streams
