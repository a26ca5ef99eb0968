"""Export streams: export_rows (the heart of the tap), exports and feed_totals."""

from __future__ import annotations

import datetime
import logging
import sys
import time
import typing as t
from functools import cached_property

from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage

from tap_contactbased import schemas
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.coercion import RowTyper
from tap_contactbased.errors import ConfigError, ContactBasedError, CreditError
from tap_contactbased.exports import (
    FAILED,
    SEARCH,
    ExportLifecycle,
    ExportOptions,
    ExportSummary,
    WaitPolicy,
)
from tap_contactbased.readers import make_reader
from tap_contactbased.streams.organization import EnvelopePaginator
from tap_contactbased.windows import SNAPSHOT, Window, plan_window

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_contactbased.run import RunContext
    from tap_contactbased.settings import Settings

PREVIEW = "/intent/feeds/exports/preview"
READ_MAX_TRIES = 6


class RunStream(ContactBasedStream):
    """A stream that shares the run's context with the others."""

    def __init__(self, tap: Tap, run: RunContext, schema: dict[str, t.Any] | None = None) -> None:
        """Create the stream for `tap`, sharing `run`."""
        self.run = run
        super().__init__(tap, schema=schema)

    @property
    def settings(self) -> Settings:
        """The typed settings of the run."""
        return self.run.settings

    @cached_property
    def lifecycle(self) -> ExportLifecycle:
        """Export lifecycle on this stream's session, auth and retry policy."""
        settings = self.settings
        wait = WaitPolicy(
            timeout_seconds=settings.export_timeout_seconds,
            stall_timeout_seconds=settings.export_stall_timeout_seconds,
            max_interval_seconds=settings.poll_interval_max_seconds,
        )
        return ExportLifecycle(self.api, wait, self.logger)

    @property
    def in_connection_test(self) -> bool:
        """`--test` caps every stream at one record; nothing may be spent then."""
        return self.ABORT_AT_RECORD_COUNT is not None

    def write_checkpoint(self) -> None:
        """Emit a STATE message now.

        The SDK writes state every 10,000 records and at the end of a stream; an export
        page is our unit of confirmation, so we ask for one after each. In BATCH mode the
        SDK writes state after each batch file instead: a state written earlier would
        confirm rows still waiting in an unwritten file.
        """
        if self.get_batch_config(self.config) is not None:
            return
        self.state_manager.is_flushed = False
        self._write_state_message()

    @override
    def log_sync_costs(self) -> None:
        """The SDK calls this on every stream once all have synced: time for the receipt."""
        super().log_sync_costs()
        self.run.receipt.log_once(logging.getLogger(self.tap_name))

    def pause_before_retry(self, attempt: int) -> None:
        """Wait before reading a cut body again, growing like request retries do."""
        time.sleep(min(self.retry_max_wait, self.retry_initial_wait * 2 ** (attempt - 1)))


class ExportRowsStream(RunStream):
    """Rows of each configured feed's export: find or create, wait, read, type, resume.

    State per feed: `delivered_through` (last complete day delivered, incremental mode),
    `in_flight` (the export being delivered and `rows_done`, the rows confirmed so far),
    `last_export_id` (the last export delivered completely).
    """

    name = "export_rows"
    path = "/intent/feeds/exports"
    primary_keys = ("export_id", "export_row")
    replication_key = None
    # Values are typed once by RowTyper; the SDK's per-record conformance would redo it.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    chunk_extracted_at: datetime.datetime | None = None

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
                    preview = self.api.post(PREVIEW, self._preview_body(feed_id))
                except (ContactBasedError, RetriableAPIError) as exc:
                    self.logger.warning(
                        "Preview of feed %s failed; discovery keeps the contract's columns: %s",
                        feed_id,
                        exc,
                    )
                    continue
                columns.extend(preview.get("columns") or [])
        return schemas.export_row_schema(columns, settings.export_bundles)

    def _preview_body(self, feed_id: str) -> dict[str, t.Any]:
        options = self.options(feed_id, 1)
        return {**options.body(), "preview_rows": 1, "skip_count": True}

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        return [{"feed_id": feed_id} for feed_id in self.settings.feed_ids] or None

    @cached_property
    def selects_every_property(self) -> bool:
        """Whether the catalog keeps every property of the stream."""
        return all(self.mask.values())

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> Generator[RecordMessage, None, None]:
        """The SDK's record messages, without its per-record selection walk when it is moot.

        The SDK visits every property of every record, nested objects included, to drop the
        deselected ones: about 10 µs a row here, a third of the tap's CPU (see the README's
        performance section). With every property selected it drops nothing, so the walk is
        skipped; conformance is off for this stream, so nothing else is left out.
        test_record_messages.py checks that both paths write the same messages.
        """
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

    def options(self, feed_id: str, lookback_days: int) -> ExportOptions:
        """The export options the settings ask for."""
        settings = self.settings
        return ExportOptions(
            feed_id=feed_id,
            lookback_days=lookback_days,
            page_size=settings.page_size,
            max_rows=settings.max_rows,
            require_contact_id=settings.require_contact_id,
            consumer_filters=settings.consumer_filters,
            enrichment_bundles=settings.export_bundles,
        )

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if context is None:
            self.logger.info("feed_ids is empty: export_rows emits nothing.")
            return
        feed_id = str(context["feed_id"])
        feed = self.run.feed(self.api, feed_id)
        if self.settings.export_bundles or self.run.enrichment_active:
            self.run.check_enrichment_bundles(self.api)
        if self.in_connection_test:
            self._test_access(feed_id)
            return
        state = self.get_context_state(context)
        resumed = self._resume(state)
        if resumed is not None:
            yield from self._deliver(resumed, state, feed_id)
            if self.settings.export_mode == SNAPSHOT:
                return
        window = self._next_window(feed, state)
        if window is not None:
            yield from self._export_window(feed_id, window, state)

    def _test_access(self, feed_id: str) -> None:
        preview = self.api.post(PREVIEW, self._preview_body(feed_id))
        self.logger.info(
            "Connection test: feed %s previews %d columns; no export created.",
            feed_id,
            len(preview.get("columns") or []),
        )

    def _resume(self, state: dict[str, t.Any]) -> ExportSummary | None:
        flight = state.get("in_flight")
        if not flight or self.settings.plan_only:
            return None
        export = self.lifecycle.get(flight["export_id"])
        if export is None or export.status == FAILED:
            self.logger.warning(
                "The export %s left in flight by an earlier run is %s; planning a new one.",
                flight["export_id"],
                "gone" if export is None else "failed",
            )
            del state["in_flight"]
            return None
        self.logger.info(
            "Resuming %s after row %d, left in flight by an earlier run.",
            export.describe(),
            flight["rows_done"],
        )
        self.run.receipt.exports_reused.append(export.export_id)
        return export

    def _next_window(self, feed: dict[str, t.Any], state: dict[str, t.Any]) -> Window | None:
        settings = self.settings
        feed_id = str(feed["feed_id"])
        cap = int(feed.get("max_lookback_days") or settings.lookback_days)
        delivered = state.get("delivered_through")
        if delivered is None and settings.lookback_days > cap:
            msg = (
                f"lookback_days is {settings.lookback_days} but feed {feed_id} allows at most "
                f"{cap} (max_lookback_days). Lower lookback_days to {cap} or less."
            )
            raise ConfigError(msg)
        today = self.lifecycle.api_today(feed_id)
        window = plan_window(
            mode=settings.export_mode,
            today=today,
            lookback_days=settings.lookback_days,
            max_lookback_days=cap,
            delivered_through=None if delivered is None else datetime.date.fromisoformat(delivered),
        )
        if window is None:
            yesterday = (today - datetime.timedelta(days=1)).isoformat()
            if delivered is None and not settings.plan_only:
                state["delivered_through"] = yesterday
            self.logger.info(
                "Feed %s is delivered through %s: no complete day to export before %s.",
                feed_id,
                state.get("delivered_through", yesterday),
                today,
            )
            return None
        if window.skipped_days:
            self.logger.warning(
                "Feed %s was last delivered through %s, more than its max_lookback_days (%d) "
                "ago: %d day(s) before %s cannot be exported any more and are skipped.",
                feed_id,
                delivered,
                cap,
                window.skipped_days,
                window.start_date,
            )
        return window

    def _export_window(
        self, feed_id: str, window: Window, state: dict[str, t.Any]
    ) -> Iterator[dict[str, t.Any]]:
        options = self.options(feed_id, window.lookback_days)
        lifecycle = self.lifecycle
        receipt = self.run.receipt
        export = lifecycle.find_reusable(
            options,
            window.start_date,
            window.end_date,
            exclude={state["last_export_id"]} if state.get("last_export_id") else (),
        )
        if self.settings.plan_only:
            self._report_plan(options, window, export)
            return
        if export is not None:
            self.logger.info(
                "Reusing %s (%s) instead of creating one.", export.describe(), export.status
            )
            receipt.exports_reused.append(export.export_id)
        else:
            check = lifecycle.check_credits(options)
            cap = self.settings.max_records_per_run
            if cap is not None and receipt.records_reserved + check.records_required > cap:
                msg = (
                    f"Exporting feed {feed_id} would reserve {check.records_required:,} records "
                    f"credits; with {receipt.records_reserved:,} reserved earlier in this run "
                    f"that exceeds max_records_per_run ({cap:,}). Raise the cap or narrow "
                    "the export."
                )
                raise CreditError(msg)
            export = lifecycle.create(options, check)
            receipt.exports_created.append(
                {
                    "export_id": export.export_id,
                    "feed_id": feed_id,
                    "records_reserved": export.records_reserved or check.records_required,
                }
            )
        state["in_flight"] = {
            "export_id": export.export_id,
            "start_date": window.start_date.isoformat(),
            "end_date": window.end_date.isoformat(),
            "deliver_through": window.deliver_through and window.deliver_through.isoformat(),
            "rows_done": 0,
        }
        # Confirm the export before waiting, so that a run killed while it builds resumes it.
        self.write_checkpoint()
        yield from self._deliver(export, state, feed_id)

    def _report_plan(
        self, options: ExportOptions, window: Window, reusable: ExportSummary | None
    ) -> None:
        plan: dict[str, t.Any] = {
            "feed_id": options.feed_id,
            "start_date": window.start_date.isoformat(),
            "end_date": window.end_date.isoformat(),
        }
        if reusable is not None:
            plan["reuse_export_id"] = reusable.export_id
            self.logger.info("Plan: would reuse %s; nothing to spend.", reusable.describe())
        else:
            check = self.lifecycle.check_credits(options)
            plan.update(
                total_rows=check.total_rows,
                records_required=check.records_required,
                records_remaining=check.records_remaining,
            )
            self.logger.info(
                "Plan: would export feed %s for %s..%s: %s rows, reserving %s records "
                "credits (%s left). Nothing was created (plan_only).",
                options.feed_id,
                window.start_date,
                window.end_date,
                f"{check.total_rows:,}",
                f"{check.records_required:,}",
                "unknown" if check.records_remaining is None else f"{check.records_remaining:,}",
            )
        self.run.receipt.exports_planned.append(plan)

    def _deliver(
        self, export: ExportSummary, state: dict[str, t.Any], feed_id: str
    ) -> Iterator[dict[str, t.Any]]:
        """Wait for the export, then emit its rows from the first unconfirmed one."""
        flight = state["in_flight"]
        export = self.lifecycle.wait_until_ready(export)
        through = flight.get("deliver_through")
        start_row = int(flight["rows_done"]) + 1
        collect = self.run.enrichment_active
        contacts = self.run.contacts
        properties = self.effective_schema["properties"]
        fixed = {"export_id": export.export_id, "feed_id": feed_id}
        reader = make_reader(
            self.settings.read_mode,
            self.api,
            export,
            self.logger,
            max_tries=READ_MAX_TRIES,
            pause=self.pause_before_retry,
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
            flight["rows_done"] = number - 1
            self.write_checkpoint()
        self._report_values(export, typers.values(), reader.nul_bytes)
        self._finish(export, state, complete_from_start=start_row == 1)
        self.logger.info("Delivered %s rows of %s.", f"{emitted:,}", export.describe())

    def _typer(
        self,
        export: ExportSummary,
        header: list[str],
        properties: dict[str, t.Any],
        fixed: dict[str, t.Any],
    ) -> RowTyper:
        typer = RowTyper(header, properties, fixed)
        if typer.unknown_columns:
            self.logger.warning(
                "%s has columns the catalog does not know: %s. They are kept as text in "
                "extra_columns; run discovery again to type them.",
                export.describe(),
                ", ".join(typer.unknown_columns),
            )
        missing = [
            c for c in typer.missing_columns if not c.startswith(schemas.BUNDLE_COLUMN_PREFIX)
        ]
        if missing:
            self.logger.warning(
                "%s lacks the columns %s; they are null in its records.",
                export.describe(),
                ", ".join(missing),
            )
        return typer

    def _report_values(
        self, export: ExportSummary, typers: Iterable[RowTyper], nul_bytes: int
    ) -> None:
        for typer in typers:
            for column, count in sorted(typer.invalid_values.items()):
                self.logger.warning(
                    "%s: %d value(s) of %s did not fit its type; they are null, with the "
                    "text kept in extra_columns.",
                    export.describe(),
                    count,
                    column,
                )
        if nul_bytes:
            self.logger.warning(
                "%s: removed %d NUL character(s), which text cannot hold.",
                export.describe(),
                nul_bytes,
            )

    def _finish(
        self, export: ExportSummary, state: dict[str, t.Any], *, complete_from_start: bool
    ) -> None:
        flight = state.pop("in_flight")
        through = flight.get("deliver_through")
        if through is not None:
            state["delivered_through"] = through
        state["last_export_id"] = export.export_id
        if self.run.enrichment_active:
            if complete_from_start:
                self.run.contacts.complete_exports.add(export.export_id)
            self.run.pending_enrichment.add(export.export_id, export.feed_id, through)
        self.write_checkpoint()


class ExportsStream(RunStream):
    """Export summaries of the organization (POST /intent/feeds/exports/list)."""

    name = "exports"
    path = "/intent/feeds/exports/list"
    http_method = "POST"
    primary_keys = ("export_id",)
    records_jsonpath = "$.items[*]"
    list_page_size = 50

    def __init__(self, tap: Tap, run: RunContext) -> None:
        """Create the stream for `tap`."""
        super().__init__(tap, run, schemas.EXPORT_SUMMARY)

    @override
    def get_new_paginator(self) -> EnvelopePaginator:
        return EnvelopePaginator(start_value=1)

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any]:
        return {"page": next_page_token or 1, "page_size": self.list_page_size}


class FeedTotalsStream(RunStream):
    """Daily signal counts of each configured feed (POST /intent/feeds/search)."""

    name = "feed_totals"
    path = SEARCH
    primary_keys = ("feed_id", "date")

    def __init__(self, tap: Tap, run: RunContext) -> None:
        """Create the stream for `tap`."""
        super().__init__(tap, run, schemas.FEED_TOTAL)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        settings = self.settings
        if not settings.feed_ids:
            self.logger.info("feed_ids is empty: feed_totals emits nothing.")
        for feed_id in settings.feed_ids:
            feed = self.run.feed(self.api, feed_id)
            lookback = min(
                settings.lookback_days, int(feed.get("max_lookback_days") or settings.lookback_days)
            )
            answer = self.api.post(
                SEARCH,
                {"feed_id": feed_id, "lookback_days": lookback, "include_daily_counts": True},
            )
            for day in answer.get("daily_counts") or []:
                yield {
                    "feed_id": feed_id,
                    "date": day["date"],
                    "count": day.get("count"),
                    "lookback_days": answer.get("lookback_days", lookback),
                    "start_date": answer.get("start_date"),
                    "end_date": answer.get("end_date"),
                }
