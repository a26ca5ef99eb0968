"""The export_rows stream: the rows of every configured feed's export, typed, exactly once."""

from __future__ import annotations

import datetime
import typing as t
from functools import cached_property

from singer_sdk import metrics
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.metrics import DEFAULT_LOG_INTERVAL
from typing_extensions import override

from tap_contactbased import batch_files, schemas
from tap_contactbased.batch_files import BatchFiles, owner_only
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.coercion import RowTyper, TypedChunk
from tap_contactbased.errors import ContactBasedError, ExportError
from tap_contactbased.job import Phase, WaitPolicy
from tap_contactbased.lifecycle import ExportLifecycle, preview
from tap_contactbased.plan import Planner
from tap_contactbased.readers import ExportToRead, make_reader
from tap_contactbased.scheduler import Delivery, Scheduler
from tap_contactbased.sdk_internals import (
    BookmarkKeptByTap,
    SelectionWalkSkipped,
    announce_batch,
    direct_record_writer,
    mapped_records,
    passes_records_unchanged,
    stream_version,
    write_state_now,
)
from tap_contactbased.settings import SNAPSHOT
from tap_contactbased.snapshot import KEY as SNAPSHOT_KEY
from tap_contactbased.snapshot import SnapshotVersion
from tap_contactbased.summary import ExportOptions

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_contactbased.job import ExportJob
    from tap_contactbased.run import RunContext
    from tap_contactbased.sdk_internals import BaseBatchFileEncoding, BatchConfig


class ExportRowsStream(SelectionWalkSkipped, BookmarkKeptByTap, ContactBasedStream):
    """Rows of each configured feed's export: planned, built at once, read when ready."""

    name = "export_rows"
    primary_keys = ("export_id", "export_row")
    # Values are typed once by RowTyper; the SDK's per-record conformance would redo it.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, run: RunContext) -> None:
        super().__init__(tap, run)
        # Incremental by whole days, with a bookmark per feed that the export jobs keep.
        self.forced_replication_method = "INCREMENTAL"
        # Set in BATCH mode when this stream writes its own files (see get_batches).
        self._batch_files: BatchFiles | None = None
        self._batch_counter: metrics.Counter | None = None
        self._record_counter: metrics.Counter | None = None
        # A versioned snapshot (emit_activate_version_messages, export_mode snapshot).
        self._snapshot: SnapshotVersion | None = None
        self._jobs: tuple[ExportJob, ...] = ()  # the jobs of this run, once planned

    @cached_property
    @override
    def schema(self) -> dict[str, t.Any]:
        """The contract's columns plus what free previews of the configured feeds show."""
        settings = self.settings
        columns: list[str] = []
        if self.config.get("api_key"):
            for feed_id in settings.feed_ids:
                try:
                    preview = self._preview(feed_id)
                except (ContactBasedError, RetriableAPIError) as exc:
                    self.logger.warning(
                        "Preview of feed %s failed; discovery keeps the contract's columns: %s",
                        feed_id,
                        exc,
                    )
                    continue
                listed = preview.get("columns") if isinstance(preview, dict) else None
                columns.extend(str(c) for c in listed or [])
        return schemas.export_row_schema(columns, settings.export_bundles)

    def _preview(self, feed_id: str) -> t.Any:
        return preview(self.client, ExportOptions.from_settings(self.settings, feed_id, 1))

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One pass over every feed: the jobs keep one state entry per feed themselves."""
        return None

    @override
    def run_version(self) -> int | None:
        """In snapshot mode, the version of the snapshot this run begins or finishes.

        None in incremental mode, and for a run that delivers nothing (an activation would
        empty the table). Without versions asked for, an open snapshot left in the state is
        dropped: it could not be finished under its version.
        """
        self._snapshot = None
        settings = self.settings
        if settings.export_mode != SNAPSHOT or not self.versions_asked:
            self.tap_state.get("bookmarks", {}).get(self.name, {}).pop(SNAPSHOT_KEY, None)
            return None
        if settings.plan_only or self.run.connection_test or not settings.feed_ids:
            return None
        self._snapshot = SnapshotVersion(self.stream_state, settings.feed_ids, self.new_version)
        return self._snapshot.version

    @override
    def activates(self) -> bool:
        """Only once every feed's export of the snapshot was delivered."""
        return self._snapshot is not None and self._snapshot.complete

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        return self._deliver(ChunkDelivery(self))

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write and announce the files here, each followed by the state confirming its rows.

        Nothing is yielded: the SDK would announce it under every alias of the stream's maps.
        """
        if not batch_files.writes(batch_config):
            self.logger.info(
                "batch_config asks for %s files: export_rows leaves them to the SDK's batcher.",
                batch_config.encoding.format,
            )
            yield from super().get_batches(batch_config, context)
            return
        batches = self.get_batch_counter()

        def announce(alias: str, manifest: list[str]) -> None:
            announce_batch(self, alias, batch_config.encoding, manifest)
            batches.increment()

        with owner_only():
            self._batch_files = BatchFiles(
                batch_config,
                tap_name=self.tap_name,
                announce=announce,
                aliases=self.stream_aliases(),
                version=stream_version(self),
            )
            with self.get_record_counter():
                for _ in self._deliver(ChunkDelivery(self, self._batch_files)):
                    pass
        self.logger.info(
            "Wrote %s rows of export_rows in %d batch file(s) under %s.",
            f"{self._batch_files.rows:,}",
            self._batch_files.files,
            batch_config.storage.root,
        )

    @override
    def get_batch_counter(self) -> metrics.Counter:
        """One counter per sync, so that the files `get_batches` announces are counted."""
        if self._batch_counter is None:
            self._batch_counter = super().get_batch_counter()
        return self._batch_counter

    @override
    def write_checkpoint(self) -> None:
        """A STATE message now (in BATCH mode too), the feeds delivered noted in the snapshot."""
        if self._snapshot is not None:
            self._snapshot.note(job.feed_id for job in self._jobs if job.phase is Phase.DELIVERED)
        if self._batch_files is not None:
            write_state_now(self)
        else:
            super().write_checkpoint()

    def _deliver(self, delivery: Delivery) -> Iterator[dict[str, t.Any]]:
        """Plan every feed's export, then deliver each through `delivery` (records, or files)."""
        settings = self.settings
        if not settings.feed_ids:
            self.logger.info("feed_ids is empty: export_rows emits nothing.")
            return
        lifecycle = ExportLifecycle(self.client, self.logger)
        wait = WaitPolicy.from_settings(settings)
        states = {f: self.get_context_state({"feed_id": f}) for f in settings.feed_ids}
        snapshot = self._snapshot
        planner = Planner(
            self.run,
            lifecycle,
            states,
            wait=wait,
            logger=self.logger,
            delivered_before=snapshot.delivered_before if snapshot else (),
        )
        if self.run.connection_test:
            self._test_access(planner)
            return
        if snapshot is not None:
            snapshot.note(())  # every feed delivered before: the snapshot is whole
        try:
            self._jobs = jobs = planner.plan()
            if not settings.plan_only:
                scheduler = Scheduler(
                    jobs, lifecycle, self.run, delivery, wait=wait, logger=self.logger
                )
                yield from scheduler.run()
        except BaseException:
            self.run.receipt_on_failure()
            raise
        # Each failed job's reason (plan_only: the refused counts).
        self.run.export_failures.extend(job.error for job in jobs if job.error is not None)

    def _test_access(self, planner: Planner) -> None:
        """Check the feeds and bundles, and preview each feed: free, nothing created."""
        planner.check_settings()
        for feed_id in self.settings.feed_ids:
            columns = self._preview(feed_id).get("columns") or []
            self.logger.info(
                "Connection test: feed %s previews %d columns; no export created.",
                feed_id,
                len(columns),
            )

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = DEFAULT_LOG_INTERVAL
    ) -> metrics.Counter:
        """One counter per sync, so that the records written past the SDK's loop count too."""
        if self._record_counter is None:
            self._record_counter = super().get_record_counter(
                endpoint=endpoint, log_interval=log_interval
            )
        return self._record_counter


class ChunkDelivery:
    """A ready export's chunks, each confirmed once written: as records, or into files.

    RECORD mode writes a chunk at a time past the SDK's loop where nothing would change the
    records (`direct_record_writer`). BATCH mode (`files`) announces each chunk's file before
    it confirms the rows, so no state written at any moment confirms a row in no file.
    """

    def __init__(self, stream: ExportRowsStream, files: BatchFiles | None = None) -> None:
        self._stream = stream
        self._files = files

    def rows(self, job: ExportJob) -> Iterator[dict[str, t.Any]]:
        """The records of a ready export from its first unconfirmed row; none into files."""
        stream, files = self._stream, self._files
        writer = direct_record_writer(stream) if files is None else None
        unchanged = passes_records_unchanged(stream)
        counter = stream.get_record_counter()
        for chunk in self._typed_chunks(job):
            if files is not None:
                label = f"{job.export_id}-{chunk.first_row:09d}"
                if unchanged:
                    counter.increment(files.write(stream.name, chunk, label))
                else:
                    counter.increment(files.write_mapped(mapped_records(stream, chunk), label))
            elif writer is not None:
                version = stream_version(stream)
                extracted_at = stream.chunk_extracted_at
                counter.increment(writer.write_records(stream.name, version, extracted_at, chunk))
            else:
                yield from chunk
            job.confirm(chunk.last_row)
            self.checkpoint()

    def checkpoint(self) -> None:
        self._stream.write_checkpoint()

    def _typed_chunks(self, job: ExportJob) -> Iterator[TypedChunk]:
        assert job.summary is not None
        assert job.flight is not None
        stream, settings, logger = self._stream, self._stream.settings, self._stream.logger
        page_size = job.page_size
        if page_size is None:
            # A state written before it recorded page_size, and an API that does not echo it.
            if settings.read_mode == "pages":
                msg = (
                    f"{job.describe()}: neither the state nor the API says its page size, "
                    "which reading it by pages needs; run with read_mode csv to finish it"
                )
                raise ExportError(msg)
            page_size = settings.page_size  # the CSV is read to its end whatever the size
        export = ExportToRead.of(
            job.summary, job.describe(), page_size=page_size, at_least=job.flight.expected_rows
        )
        properties = stream.effective_schema["properties"]
        fixed = {"export_id": export.export_id, "feed_id": job.feed_id}
        reader = make_reader(settings.read_mode, stream.client, export)
        contacts = stream.run.contacts if stream.run.enrichment_active else None
        typers: dict[tuple[str, ...], RowTyper] = {}
        emitted = 0
        for chunk in reader.chunks(job.next_row):
            # A chunk's rows were extracted together; one timestamp serves them all.
            stream.chunk_extracted_at = datetime.datetime.now(datetime.timezone.utc)
            typer = typers.get(key := tuple(chunk.header))
            if typer is None:
                typer = typers[key] = RowTyper(chunk.header, properties, fixed)
                typer.warn_of_columns(export.name, logger)
            typed = TypedChunk(chunk, typer, job.flight.deliver_through, contacts)
            yield typed
            emitted += typed.emitted
        for typer in typers.values():
            typer.report(export.name, logger)
        if reader.nul_bytes:
            logger.warning(
                "%s: removed %d NUL character(s), which text cannot hold.",
                export.name,
                reader.nul_bytes,
            )
        logger.info("Delivered %s rows of %s.", f"{emitted:,}", export.name)
