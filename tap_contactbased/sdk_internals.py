"""Every use of singer-sdk's private or implied behaviour, in one place.

Why each is needed: docs/architecture.md ("What touches SDK internals"). Each is pinned by a
test in tests/test_sdk_internals.py, and the SDK itself is pinned to `~=0.54.9`.
"""

from __future__ import annotations

import datetime
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
from typing_extensions import override

from tap_contactbased.writer import RecordBufferingWriter

# The batch types live in a private module: the tap imports them from here.
__all__ = ["BaseBatchFileEncoding", "BatchConfig"]

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers import types

# Where SDK targets keep a RECORD's version (the SDK's record metadata). A BATCH message has
# no version: each record of a file carries it in this field instead.
VERSION_COLUMN = "_sdc_table_version"

Transform = t.Callable[["types.Record"], "types.Record | None"]


def write_state_now(stream: Stream) -> None:
    """Write a STATE message now: the SDK writes one only every 10,000 records and at the end."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def direct_record_writer(stream: Stream) -> RecordBufferingWriter | None:
    """The tap's writer, for records written past the SDK's per-record loop, or None.

    That loop costs several microseconds a record, much of the tap's cost per export row; it
    is left out only where it would change nothing.
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
    """A BATCH message for `alias` only: the SDK's announces a manifest under every alias."""
    stream._tap.write_message(SDKBatchMessage(stream=alias, encoding=encoding, manifest=manifest))
    stream.state_manager.is_flushed = False


def storage_location(storage: StorageTarget) -> tuple[t.Any, str]:
    """The fsspec filesystem and root path of `storage` (created), as `get_url` resolves them.

    Not `StorageTarget.open`: its transaction on the whole, cached, filesystem stays open
    after a failure.
    """
    root = storage._root_path
    root.mkdir(parents=True, exist_ok=True)
    return root.fs, root.path


def map_steps(stream: Stream) -> list[tuple[str, Transform | None]]:
    """(alias, transform) per stream map; None where the SDK's default map returns the record."""
    return [
        (
            stream_map.stream_alias,
            None
            if type(stream_map) is SameRecordTransform and not stream_map.flattening_enabled
            else stream_map.transform,
        )
        for stream_map in stream.stream_maps
    ]


def passes_records_unchanged(stream: Stream) -> bool:
    """Whether RECORD messages carry the records as they are: all selected, one identity map."""
    return all(stream.mask.values()) and map_steps(stream) == [(stream.name, None)]


def mapped_records(
    stream: Stream, records: Iterable[types.Record]
) -> Iterator[tuple[str, types.Record]]:
    """(stream alias, record) of each RECORD message `records` would make, in order.

    For BATCH files: the SDK's `get_batches` takes the records before its maps and selection.
    """
    if not all(stream.mask.values()):
        for record in records:
            # The SDK's own: it drops deselected properties, then applies the maps.
            for message in Stream._generate_record_messages(stream, record):
                yield message.stream, message.record
        return
    steps = map_steps(stream)
    for record in records:
        for alias, transform in steps:
            mapped = record if transform is None else transform(record)
            if mapped is not None:
                yield alias, mapped


def records_to_batch(stream: Stream, context: types.Context | None) -> Iterator[types.Record]:
    """The records of a sync as the SDK's `get_batches` takes them: no message written."""
    return stream._sync_records(context, write_messages=False)


class SelectionWalkSkipped(Stream):
    """Record messages without the SDK's per-record selection walk when it is moot.

    The walk visits every property of every record, a large share of the CPU per export row.
    `selects_every_property` must be False when any property is deselected; conformance
    must be off (`TypeConformanceLevel.NONE`), since the walk is where the SDK applies it.
    """

    # One timestamp for the rows extracted together (set by the stream per chunk).
    chunk_extracted_at: datetime.datetime | None = None

    @cached_property
    def selects_every_property(self) -> bool:
        return all(self.mask.values())

    @cached_property
    def _map_steps(self) -> list[tuple[str, Transform | None]]:
        return map_steps(self)

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

    A stream whose `run_version` is not None sends it in every RECORD message (and BATCH file
    record) of the sync, and one ACTIVATE_VERSION of it once the sync has ended without an
    error and `activates` agrees: never in a dry run (README, "Versioned snapshots").
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
        return bool(self.config.get("emit_activate_version_messages"))

    @property
    def new_version(self) -> int:
        """A version newer than any earlier run's: this run's start, in ms since the epoch."""
        return self._tap.initialized_at

    def run_version(self) -> int | None:
        if self.replaced_by_each_sync and self.versions_asked:
            return self.new_version
        return None

    def activates(self) -> bool:
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
    """`streams` with `name` last: the SDK syncs (and logs the costs of) `Tap.streams` in order."""
    if name in streams and next(reversed(streams)) != name:
        streams[name] = streams.pop(name)
    return streams
