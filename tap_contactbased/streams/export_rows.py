"""The export_rows stream: the rows of every configured feed's export, typed, exactly once.

The stream plans the run's export jobs (`plan`), hands them to the `scheduler` and turns
the rows of each ready export into records. State per feed, kept by the jobs:
`delivered_through` (last complete day delivered, incremental mode), `in_flight` (the export
being delivered, with `rows_done`, the rows confirmed so far), `last_export_id` (the last
export delivered). A versioned snapshot keeps its version in the state until every feed is
delivered (`snapshot`).
"""

from __future__ import annotations

import datetime
import sys
import typing as t
from dataclasses import dataclass
from functools import cached_property

from singer_sdk import metrics
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.metrics import DEFAULT_LOG_INTERVAL

from tap_contactbased import batch_files, endpoints, schemas
from tap_contactbased.batch_files import BatchFiles, owner_only
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.coercion import RowTyper
from tap_contactbased.errors import ContactBasedError, ExportError
from tap_contactbased.job import Phase, WaitPolicy, failures
from tap_contactbased.lifecycle import ExportLifecycle
from tap_contactbased.plan import Planner
from tap_contactbased.readers import ExportToRead, make_reader
from tap_contactbased.scheduler import Scheduler
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
from tap_contactbased.snapshot import KEY as SNAPSHOT_KEY
from tap_contactbased.snapshot import SnapshotVersion
from tap_contactbased.summary import ExportOptions
from tap_contactbased.windows import SNAPSHOT

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_contactbased.job import ExportJob
    from tap_contactbased.readers import Chunk
    from tap_contactbased.run import ContactLedger, RunContext
    from tap_contactbased.sdk_internals import BaseBatchFileEncoding, BatchConfig


class ExportRowsStream(SelectionWalkSkipped, BookmarkKeptByTap, ContactBasedStream):
    """Rows of each configured feed's export: planned, built at once, read when ready."""

    name = "export_rows"
    primary_keys = ("export_id", "export_row")
    replication_key = None
    # Values are typed once by RowTyper; the SDK's per-record conformance would redo it.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, run: RunContext) -> None:
        """Create the stream for `tap`, sharing `run`."""
        super().__init__(tap, run)
        # Incremental by whole days, with a bookmark per feed that the export jobs keep.
        self.forced_replication_method = "INCREMENTAL"
        # Set in BATCH mode when this stream writes its own files (see get_batches).
        self._batch_files: BatchFiles | None = None
        self._batch_records: metrics.Counter | None = None
        self._batch_counter: metrics.Counter | None = None
        self._record_counter: metrics.Counter | None = None
        # A versioned snapshot (emit_activate_version_messages, export_mode snapshot).
        self._snapshot: SnapshotVersion | None = None
        self._jobs: tuple[ExportJob, ...] = ()  # the jobs of this run, once planned

    @property
    @override
    def schema(self) -> dict[str, t.Any]:
        return self._discovered_schema

    @cached_property
    def _discovered_schema(self) -> dict[str, t.Any]:
        """The contract's columns plus what free previews of the configured feeds show."""
        settings = self.settings
        columns: list[str] = []
        if self.config.get("api_key"):
            for feed_id in settings.feed_ids:
                try:
                    preview = self.client.post(
                        endpoints.EXPORTS_PREVIEW, self._preview_body(feed_id)
                    )
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

    def _preview_body(self, feed_id: str) -> dict[str, t.Any]:
        options = ExportOptions.from_settings(self.settings, feed_id, 1)
        return {**options.body(), "preview_rows": 1, "skip_count": True}

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One pass over every feed: the jobs keep one state entry per feed themselves."""
        return None

    @override
    def run_version(self) -> int | None:
        """In snapshot mode, the version of the snapshot this run begins or finishes.

        None in incremental mode (rows accumulate), and for a run that delivers nothing:
        `plan_only`, the connection test, no `feed_ids` (an activation would empty the
        table). Without versions asked for, an open snapshot left in the state is dropped:
        it could not be finished under its version.
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
        return self._deliver(self._rows_of)

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write and announce the files here, each followed by the state confirming its rows.

        The SDK would announce what this yields, under every alias of the stream's maps,
        and write the state only after each file. So nothing is yielded; the SDK's batch
        counter is the one `get_batch_counter` hands out, and counts these files.
        """
        if not batch_files.writes(batch_config):
            self.logger.info(
                "batch_config asks for %s files: export_rows leaves them to the SDK's batcher.",
                batch_config.encoding.format,
            )
            yield from super().get_batches(batch_config, context)
            return
        counter = self.get_batch_counter()

        def announce(alias: str, manifest: list[str]) -> None:
            announce_batch(self, alias, batch_config.encoding, manifest)
            counter.increment()

        aliases = [self.name] if passes_records_unchanged(self) else self.stream_aliases()
        with owner_only():
            self._batch_files = BatchFiles(
                batch_config,
                tap_name=self.tap_name,
                announce=announce,
                aliases=aliases,
                version=stream_version(self),
            )
            with self.get_record_counter() as self._batch_records:
                for _ in self._deliver(self._files_of):
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
        """A STATE message now, also in BATCH mode when this stream writes the files.

        Its files are announced before their rows are confirmed, so no state written at
        any moment confirms a row that is not in an announced file. A versioned snapshot
        notes the feeds delivered first: the STATE that confirms the last one closes it.
        """
        if self._snapshot is not None:
            jobs = self._jobs
            self._snapshot.note(job.feed_id for job in jobs if job.phase is Phase.DELIVERED)
        if self._batch_files is not None:
            write_state_now(self)
        else:
            super().write_checkpoint()

    def _deliver(
        self, read: Callable[[ExportJob], Iterator[dict[str, t.Any]]]
    ) -> Iterator[dict[str, t.Any]]:
        """Plan every feed's export, then deliver each, read by `read` (records, or files)."""
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
        if self._snapshot is not None:
            self._snapshot.note(())  # every feed delivered before: the snapshot is whole
        try:
            plan = planner.plan()
            self._jobs = plan.jobs
            if settings.plan_only:
                self.run.export_failures.extend(failures(plan.jobs))  # refused counts
                return
            delivery = StreamDelivery(read, self.write_checkpoint)
            scheduler = Scheduler(
                plan.jobs, lifecycle, self.run, delivery, wait=wait, logger=self.logger
            )
            yield from scheduler.run()
        except BaseException:
            self.run.receipt_on_failure()
            raise
        self.run.export_failures.extend(scheduler.failures)

    def _test_access(self, planner: Planner) -> None:
        """Check the feeds and bundles, and preview each feed: free, nothing created."""
        planner.check_settings()
        for feed_id in self.settings.feed_ids:
            preview = self.client.post(endpoints.EXPORTS_PREVIEW, self._preview_body(feed_id))
            self.logger.info(
                "Connection test: feed %s previews %d columns; no export created.",
                feed_id,
                len(preview.get("columns") or []),
            )

    def _rows_of(self, job: ExportJob) -> Iterator[dict[str, t.Any]]:
        """RECORD mode: a ready export's records, each chunk confirmed once it is emitted.

        Where nothing would change them, the records are written here, a chunk at a time,
        instead of one by one through the SDK's loop (`direct_record_writer`).
        """
        writer = direct_record_writer(self)
        for chunk in self._typed_chunks(job):
            if writer is None:
                yield from chunk
            else:
                version = stream_version(self)
                written = writer.write_records(self.name, version, self.chunk_extracted_at, chunk)
                self.get_record_counter().increment(written)
            job.confirm(chunk.last_row)
            self.write_checkpoint()

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

    def _files_of(self, job: ExportJob) -> Iterator[dict[str, t.Any]]:
        """BATCH mode: each chunk's records into files, announced, and only then confirmed.

        So `rows_done` advances only together with an announced file, and a state written
        at any moment confirms no row that is not in one. Yields no record.
        """
        files, counter = self._batch_files, self._batch_records
        assert files is not None
        assert counter is not None
        assert job.export_id is not None
        unchanged = passes_records_unchanged(self)
        for chunk in self._typed_chunks(job):
            label = f"{job.export_id}-{chunk.first_row:09d}"
            if unchanged:
                written = files.write(self.name, chunk, label)
            else:
                written = files.write_mapped(mapped_records(self, chunk), label)
            counter.increment(written)
            job.confirm(chunk.last_row)
            self.write_checkpoint()
        yield from ()

    def _typed_chunks(self, job: ExportJob) -> Iterator[TypedChunk]:
        """The chunks of a ready export from its first unconfirmed row, typed."""
        assert job.summary is not None
        assert job.flight is not None
        page_size = job.page_size
        if page_size is None:
            # A state written before it recorded page_size, and an API that does not echo it.
            if self.settings.read_mode == "pages":
                msg = (
                    f"{job.describe()}: neither the state nor the API says its page size, "
                    "which reading it by pages needs; run with read_mode csv to finish it"
                )
                raise ExportError(msg)
            page_size = self.settings.page_size  # the CSV is read to its end whatever the size
        export = ExportToRead.of(
            job.summary, job.describe(), page_size=page_size, at_least=job.expected_rows
        )
        properties = self.effective_schema["properties"]
        fixed = {"export_id": export.export_id, "feed_id": job.feed_id}
        reader = make_reader(
            self.settings.read_mode, self.client, export, self.logger, policy=self.client.policy
        )
        contacts = self.run.contacts if self.run.enrichment_active else None
        typers: dict[tuple[str, ...], RowTyper] = {}
        emitted = 0
        for chunk in reader.chunks(job.next_row):
            # A chunk's rows were extracted together; one timestamp serves them all.
            self.chunk_extracted_at = datetime.datetime.now(datetime.timezone.utc)
            key = tuple(chunk.header)
            typer = typers.get(key)
            if typer is None:
                typer = typers[key] = self._typer(export, chunk.header, properties, fixed)
            typed = TypedChunk(chunk, typer, job.flight.deliver_through, contacts)
            yield typed
            emitted += typed.emitted
        self._report_values(export, typers.values(), reader.nul_bytes)
        self.logger.info("Delivered %s rows of %s.", f"{emitted:,}", export.name)

    def _typer(
        self,
        export: ExportToRead,
        header: list[str],
        properties: dict[str, t.Any],
        fixed: dict[str, t.Any],
    ) -> RowTyper:
        typer = RowTyper(header, properties, fixed)
        if typer.unknown_columns:
            self.logger.warning(
                "%s has columns the catalog does not know: %s. They are kept as text in "
                "extra_columns; run discovery again to type them.",
                export.name,
                ", ".join(typer.unknown_columns),
            )
        missing = [
            c for c in typer.missing_columns if not c.startswith(schemas.BUNDLE_COLUMN_PREFIX)
        ]
        if missing:
            self.logger.warning(
                "%s lacks the columns %s; they are null in its records.",
                export.name,
                ", ".join(missing),
            )
        return typer

    def _report_values(
        self, export: ExportToRead, typers: Iterable[RowTyper], nul_bytes: int
    ) -> None:
        for typer in typers:
            for column, count in sorted(typer.invalid_values.items()):
                self.logger.warning(
                    "%s: %d value(s) of %s did not fit its type; they are null, with the "
                    "text kept in extra_columns.",
                    export.name,
                    count,
                    column,
                )
        if nul_bytes:
            self.logger.warning(
                "%s: removed %d NUL character(s), which text cannot hold.",
                export.name,
                nul_bytes,
            )


@dataclass(frozen=True)
class StreamDelivery:
    """What the scheduler delivers through: the stream's reader of a ready export, its STATE."""

    rows: Callable[[ExportJob], Iterator[dict[str, t.Any]]]
    checkpoint: Callable[[], None]


class TypedChunk:
    """The records of one chunk, typed, without rows past the delivery's last day.

    Once its records have been read, `last_row` is the chunk's last row (1-based) and
    `emitted` the number of records it gave.
    """

    def __init__(
        self, chunk: Chunk, typer: RowTyper, through: str | None, contacts: ContactLedger | None
    ) -> None:
        """Type the rows of `chunk` with `typer`; note contact ids in `contacts` if given."""
        self.first_row = chunk.first_row
        self.last_row = chunk.first_row - 1
        self.emitted = 0
        self._chunk = chunk
        self._typer = typer
        self._through = through
        self._contacts = contacts

    def __iter__(self) -> Iterator[dict[str, t.Any]]:
        """The records, in the order of the export."""
        chunk, through, contacts = self._chunk, self._through, self._contacts
        to_record = self._typer.csv_record if chunk.form == "csv" else self._typer.page_record
        number = chunk.first_row
        emitted = 0
        for raw in chunk.rows:
            record = to_record(number, raw)
            number += 1
            if through is not None:
                day = record.get("signal_date")
                if day is not None and day > through:
                    continue
            if contacts is not None and (contact_id := record.get("contact_id")):
                contacts.add(contact_id)
            emitted += 1
            yield record
        self.last_row = number - 1
        self.emitted = emitted
