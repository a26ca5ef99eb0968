"""The export_rows stream: the rows of every configured feed's export, typed, exactly once.

The stream drives the run's export jobs (`orchestrator`) and turns the rows of each ready
export into records. State per feed, kept by the jobs: `delivered_through` (last complete
day delivered, incremental mode), `in_flight` (the export being delivered, with
`rows_done`, the rows confirmed so far), `last_export_id` (the last export delivered).
"""

from __future__ import annotations

import datetime
import sys
import typing as t
from functools import cached_property

from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_contactbased import endpoints, schemas
from tap_contactbased.coercion import RowTyper
from tap_contactbased.errors import ContactBasedError
from tap_contactbased.job import WaitPolicy
from tap_contactbased.lifecycle import ExportLifecycle
from tap_contactbased.orchestrator import ExportRun
from tap_contactbased.readers import ExportToRead, make_reader
from tap_contactbased.sdk_internals import BookmarkKeptByTap, SelectionWalkSkipped
from tap_contactbased.streams.base import RunStream

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_contactbased.job import ExportJob
    from tap_contactbased.run import RunContext


class ExportRowsStream(SelectionWalkSkipped, BookmarkKeptByTap, RunStream):
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
                    preview = self.api.post(endpoints.EXPORTS_PREVIEW, self._preview_body(feed_id))
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
        options = self.export_run().options(feed_id, 1)
        return {**options.body(), "preview_rows": 1, "skip_count": True}

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One pass over every feed: the jobs keep one state entry per feed themselves."""
        return None

    def export_run(self) -> ExportRun:
        """The export jobs of this run, on this stream's client, state and policies."""
        settings = self.settings
        wait = WaitPolicy(
            timeout_seconds=settings.export_timeout_seconds,
            stall_timeout_seconds=settings.export_stall_timeout_seconds,
            max_interval_seconds=settings.poll_interval_max_seconds,
        )
        return ExportRun(
            api=self.api,
            lifecycle=ExportLifecycle(self.api, self.logger),
            run=self.run,
            wait=wait,
            retry=self.retry_policy,
            state_of=lambda feed_id: self.get_context_state({"feed_id": feed_id}),
            checkpoint=self.write_checkpoint,
            logger=self.logger,
        )

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if not self.settings.feed_ids:
            self.logger.info("feed_ids is empty: export_rows emits nothing.")
            return
        if self.run.connection_test:
            self._test_access()
            return
        export_run = self.export_run()
        try:
            export_run.plan()
            export_run.preflight()
            yield from export_run.records(self._rows_of)
        except BaseException:
            self.run.receipt_on_failure()
            raise
        self.run.export_failures.extend(export_run.failures)

    def _test_access(self) -> None:
        """Check the feeds and bundles, and preview each feed: free, nothing created."""
        self.export_run().check_settings()
        for feed_id in self.settings.feed_ids:
            preview = self.api.post(endpoints.EXPORTS_PREVIEW, self._preview_body(feed_id))
            self.logger.info(
                "Connection test: feed %s previews %d columns; no export created.",
                feed_id,
                len(preview.get("columns") or []),
            )

    def _rows_of(self, job: ExportJob) -> Iterator[dict[str, t.Any]]:
        """Emit a ready export's rows from the first unconfirmed one, confirming each chunk."""
        assert job.summary is not None
        assert job.flight is not None
        page_size = job.page_size
        assert page_size is not None
        export = ExportToRead.of(
            job.summary, job.describe(), page_size=page_size, at_least=job.expected_rows
        )
        through = job.flight.deliver_through
        start_row = job.next_row
        collect = self.run.enrichment_active
        contacts = self.run.contacts
        properties = self.effective_schema["properties"]
        fixed = {"export_id": export.export_id, "feed_id": job.feed_id}
        reader = make_reader(
            self.settings.read_mode, self.api, export, self.logger, policy=self.retry_policy
        )
        typers: dict[tuple[str, ...], RowTyper] = {}
        emitted = 0
        for chunk in reader.chunks(start_row):
            # A chunk's rows were extracted together; one timestamp serves them all.
            self.chunk_extracted_at = datetime.datetime.now(datetime.timezone.utc)
            key = tuple(chunk.header)
            typer = typers.get(key)
            if typer is None:
                typer = typers[key] = self._typer(export, chunk.header, properties, fixed)
            to_record = typer.csv_record if chunk.form == "csv" else typer.page_record
            number = chunk.first_row
            for raw in chunk.rows:
                record = to_record(number, raw)
                number += 1
                if through is not None:
                    day = record.get("signal_date")
                    if day is not None and day > through:
                        continue
                if collect and (contact_id := record.get("contact_id")):
                    contacts.add(contact_id)
                emitted += 1
                yield record
            job.confirm(number - 1)
            self.write_checkpoint()
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
