"""Exports: options, the compact row plan, columns, build progress and records credits.

An export stores no rows. It keeps how many rows each day had when it was created (and,
for exports restricted to contacts, an array of row positions); pages and CSV files
regenerate the rows from the dataset, so they are frozen without being kept.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import io
import itertools
import math
import operator
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .data import CONTRACT_COLUMNS, Dataset, Row, iso_timestamp
from .enrichment import BUNDLE_KEYS
from .filters import Filter, compile_filters, read_filters
from .validation import ApiError, BodyReader

PAGE_SIZE_MIN, PAGE_SIZE_MAX, PAGE_SIZE_DEFAULT = 1_000, 50_000, 10_000
CSV_BATCH_ROWS = 2_000
_FAIL_AT, _STALL_AT = 0.5, 0.4  # build progress at which failing / stalled builds stop
_DAY_SHIFT = 32  # positions are (day number << 32) | row index


@dataclass(frozen=True)
class ExportOptions:
    """The options of preview, count and create, validated and with defaults filled in."""

    feed_id: str
    lookback_days: int
    page_size: int = PAGE_SIZE_DEFAULT
    max_rows: int | None = None
    require_contact_id: bool = False
    consumer_filters: tuple[Filter, ...] = ()
    enrichment_bundles: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the options as an export summary shows them."""
        return {
            "lookback_days": self.lookback_days,
            "page_size": self.page_size,
            "max_rows": self.max_rows,
            "require_contact_id": self.require_contact_id,
            "consumer_filters": [f.as_dict() for f in self.consumer_filters],
            "enrichment_bundles": list(self.enrichment_bundles),
        }


def read_feed_window(reader: BodyReader) -> tuple[str, int]:
    """Read feed_id and lookback_days (both required)."""
    feed_id = reader.uuid("feed_id", required=True)
    lookback = reader.integer("lookback_days", required=True, ge=1)
    return feed_id or "", lookback or 1


def read_export_options(reader: BodyReader, id_column: str = "contact_id") -> ExportOptions:
    """Read the export options of a body; the caller calls `reader.check()`.

    An API that spells the id `id_column` also takes `require_<id_column>`.
    """
    feed_id, lookback = read_feed_window(reader)
    page_size = reader.integer("page_size", PAGE_SIZE_DEFAULT, ge=PAGE_SIZE_MIN, le=PAGE_SIZE_MAX)
    max_rows = reader.integer("max_rows", None, ge=1)
    filters = read_filters(reader)
    bundles = reader.string_list("enrichment_bundles") or []
    for i, key in enumerate(bundles):
        if key not in BUNDLE_KEYS:
            choices = ", ".join(f"'{k}'" for k in BUNDLE_KEYS)
            reader.fail(["enrichment_bundles", i], f"Input should be {choices}", "enum", key)
    require = reader.boolean("require_contact_id", False) or bool(filters) or bool(bundles)
    if id_column != "contact_id":
        require = reader.boolean(f"require_{id_column}", False) or require
    return ExportOptions(
        feed_id=feed_id,
        lookback_days=lookback,
        page_size=page_size or PAGE_SIZE_DEFAULT,
        max_rows=max_rows,
        require_contact_id=require,
        consumer_filters=filters,
        enrichment_bundles=tuple(dict.fromkeys(bundles)),
    )


@dataclass(frozen=True)
class RowPlan:
    """Which rows an export holds: per-day counts, or explicit positions when restricted."""

    feed_id: str
    days: tuple[dt.date, ...]
    counts: tuple[int, ...]
    positions: array[int] | None
    total: int

    @functools.cached_property
    def starts(self) -> list[int]:
        """Export offset of each day's first row (unrestricted plans)."""
        return [0, *itertools.accumulate(self.counts)][:-1]

    def runs(self, start: int, stop: int) -> Iterator[tuple[dt.date, Sequence[int]]]:
        """Yield (day, row indexes of that day) covering export rows [start, stop) in order."""
        stop = min(stop, self.total)
        if start >= stop:
            return
        if self.positions is None:
            starts = self.starts
            d = bisect.bisect_right(starts, start) - 1
            while start < stop:
                first = start - starts[d]
                last = min(self.counts[d], stop - starts[d])
                if last > first:
                    yield self.days[d], range(first, last)
                    start = starts[d] + last
                d += 1
            return
        mask = (1 << _DAY_SHIFT) - 1
        chunk = self.positions[start:stop]
        for d, group in itertools.groupby(chunk, key=lambda p: p >> _DAY_SHIFT):
            yield self.days[d], [p & mask for p in group]


def build_plan(
    dataset: Dataset,
    feed_id: str,
    days: Sequence[dt.date],
    counts: Sequence[int],
    options: ExportOptions,
) -> RowPlan:
    """Decide the rows of an export of a window whose days hold `counts` rows now."""
    cap = options.max_rows
    if not options.require_contact_id:
        total = sum(counts) if cap is None else min(sum(counts), cap)
        return RowPlan(feed_id, tuple(days), tuple(counts), None, total)
    positions = array("q")
    matches = compile_filters(options.consumer_filters) if options.consumer_filters else None
    seen: set[int] = set()  # contacts already exported: filters make exports person-distinct
    for d, (day, count) in enumerate(zip(days, counts, strict=True)):
        column = dataset.contact_column(feed_id, day)
        wanted = [i for i in range(count) if column[i] >= 0]
        if matches is not None:
            # Rows of contacts already exported are skipped before generating them: most rows.
            wanted = [i for i in wanted if column[i] not in seen]
            rows = dataset.rows(feed_id, day, wanted)
            wanted = _first_matches(wanted, rows, column, seen, matches)
        positions.extend((d << _DAY_SHIFT) | i for i in wanted)
        if cap is not None and len(positions) >= cap:
            del positions[cap:]
            break
    return RowPlan(feed_id, tuple(days), tuple(counts), positions, len(positions))


def _first_matches(
    candidates: list[int],
    rows: Iterable[Row],
    column: array[int],
    seen: set[int],
    matches: Callable[[Row], bool],
) -> list[int]:
    """Candidate rows that match the filters and are the first of their contact."""
    kept = []
    for i, row in zip(candidates, rows, strict=True):
        if column[i] not in seen and matches(row):
            seen.add(column[i])
            kept.append(i)
    return kept


def rows_with_contact(dataset: Dataset, plan: RowPlan) -> int:
    """Count the rows of a plan that have a contact id."""
    if plan.positions is not None:
        return plan.total
    found = 0
    for day, indexes in plan.runs(0, plan.total):
        column = dataset.contact_column(plan.feed_id, day)
        found += sum(1 for i in indexes if column[i] >= 0)
    return found


@dataclass(frozen=True)
class ColumnLayout:
    """How contract rows become export rows: renamed, dropped, extra and bundle columns."""

    columns: tuple[str, ...]
    keep: tuple[int, ...]
    extras: tuple[str, ...]
    bundles: tuple[str, ...]
    bundle_text: Callable[[str, str], str]

    @property
    def identity(self) -> bool:
        """True when export rows are the contract rows as they are."""
        return len(self.keep) == len(CONTRACT_COLUMNS) and not self.extras and not self.bundles

    def apply(self, rows: Iterable[Row], indexes: Iterable[int]) -> Iterator[Row]:
        """Turn contract rows (with their row indexes) into export rows."""
        if self.identity:
            yield from rows
            return
        pick = operator.itemgetter(*self.keep) if self.keep else (lambda _row: ())
        single = len(self.keep) == 1
        for row, index in zip(rows, indexes, strict=True):
            kept = pick(row)
            values = (kept,) if single else tuple(kept)
            extra = tuple(f"{name}-{index % 97}" for name in self.extras)
            bundled = tuple(self.bundle_text(key, row[0]) for key in self.bundles)
            yield values + extra + bundled


def make_layout(
    id_column: str,
    extra_columns: Sequence[str],
    drop_columns: Sequence[str],
    bundles: Sequence[str],
    bundle_text: Callable[[str, str], str],
) -> ColumnLayout:
    """Build the column layout from the column fault knobs and the requested bundles."""
    dropped = set(drop_columns)
    keep = tuple(i for i, name in enumerate(CONTRACT_COLUMNS) if name not in dropped)
    names = [
        id_column if CONTRACT_COLUMNS[i] == "contact_id" else CONTRACT_COLUMNS[i] for i in keep
    ]
    extras = tuple(name for name in dict.fromkeys(extra_columns) if name not in names)
    columns = (*names, *extras, *(f"bundle_{key}" for key in bundles))
    return ColumnLayout(tuple(columns), keep, extras, tuple(bundles), bundle_text)


class CreditPool:
    """The organization's records credits."""

    def __init__(self, total: int) -> None:
        """Start with nothing used or reserved."""
        self.total = total
        self.used = 0
        self.reserved = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Records neither used nor reserved."""
        return self.total - self.used - self.reserved

    def reserve(self, records: int) -> None:
        """Reserve records for a new export, or fail with 402."""
        with self._lock:
            if records > self.remaining:
                raise ApiError(
                    402,
                    f"Not enough records credits: this export requires {records} records, "
                    f"{self.remaining} remaining",
                )
            self.reserved += records

    def settle(self, records: int, *, used: bool) -> None:
        """Move reserved records to used (export ready) or back to remaining (failed)."""
        with self._lock:
            self.reserved -= records
            if used:
                self.used += records

    def snapshot(self, today: dt.date) -> dict[str, Any]:
        """Return GET /organization/credits."""
        start = today.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        with self._lock:
            return {
                "records_total": self.total,
                "records_used": self.used,
                "records_reserved": self.reserved,
                "records_remaining": self.remaining,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            }


@dataclass(frozen=True)
class BuildFate:
    """How a build ends, fixed from the fault knobs when the export is created."""

    build_error: str | None = None
    stalled: bool = False
    reported_status: str | None = None


class Export:
    """One export: frozen rows, a build that takes `build_seconds`, credits held."""

    def __init__(
        self,
        *,
        export_id: str,
        options: ExportOptions,
        plan: RowPlan,
        layout: ColumnLayout,
        dataset: Dataset,
        credits: CreditPool,
        created_at: dt.datetime,
        build_seconds: float,
        fate: BuildFate,
    ) -> None:
        """Register a new export; the caller has already reserved its records."""
        self.export_id = export_id
        self.options = options
        self.plan = plan
        self.layout = layout
        self.dataset = dataset
        self.created_at = created_at
        self.build_seconds = build_seconds
        self.fate = fate
        self.stalled = fate.stalled  # a test may set it to False to let the build finish
        self._credits = credits
        self._started = time.monotonic()
        self._settled: str | None = None
        self._lock = threading.Lock()

    @property
    def feed_id(self) -> str:
        """The feed the export was made from."""
        return self.options.feed_id

    @property
    def columns(self) -> list[str]:
        """The export's columns, in order."""
        return list(self.layout.columns)

    @property
    def total_rows(self) -> int:
        """Number of rows (also the records it costs)."""
        return self.plan.total

    @property
    def total_pages(self) -> int:
        """Number of pages; 0 for an empty export."""
        return math.ceil(self.plan.total / self.options.page_size)

    def finish_now(self) -> None:
        """Make the build complete at once (ready exports for benchmarks)."""
        self._started = time.monotonic() - self.build_seconds

    def _raw_state(self) -> tuple[str, float]:
        elapsed = time.monotonic() - self._started
        progress = 1.0 if self.build_seconds <= 0 else min(elapsed / self.build_seconds, 1.0)
        if self.fate.build_error is not None and progress >= _FAIL_AT:
            return "failed", _FAIL_AT
        if self.stalled:
            return "building", round(min(progress, _STALL_AT), 4)
        if progress >= 1.0:
            return "ready", 1.0
        return "building", min(round(progress, 4), 0.9999)

    def state(self) -> tuple[str, float]:
        """Return (internal status, progress), settling credits when the build has ended.

        The internal status is building, ready or failed; `summary` may report another.
        """
        status, progress = self._raw_state()
        if status != "building":
            with self._lock:
                if self._settled is None:
                    self._settled = status
                    self._credits.settle(self.plan.total, used=status == "ready")
        return status, progress

    def _served(self, status: str) -> str:
        if status == "ready" and self.fate.reported_status is not None:
            return self.fate.reported_status
        return status

    @property
    def status(self) -> str:
        """The status as served."""
        return self._served(self.state()[0])

    @property
    def built(self) -> bool:
        """True when the rows can be read (ready, or built under an unknown status)."""
        return self.state()[0] == "ready"

    def summary(self, *, just_created: bool = False) -> dict[str, Any]:
        """Return the export summary as served."""
        status, progress = ("building", 0.0) if just_created else self.state()
        built = status == "ready"
        updated = self.created_at
        if status != "building":
            took = self.build_seconds * (_FAIL_AT if status == "failed" else 1.0)
            updated = self.created_at + dt.timedelta(seconds=took)
        return {
            "export_id": self.export_id,
            "feed_id": self.feed_id,
            "status": self._served(status),
            "build_progress": progress,
            "build_error": self.fate.build_error if status == "failed" else None,
            **self.options.as_dict(),
            "start_date": self.plan.days[0].isoformat(),
            "end_date": self.plan.days[-1].isoformat(),
            "total_rows": self.plan.total if built else None,
            "total_pages": self.total_pages if built else None,
            "columns": self.columns if built else None,
            "records_reserved": 0 if status == "failed" else self.plan.total,
            "created_at": iso_timestamp(self.created_at),
            "updated_at": iso_timestamp(updated),
        }

    def page_bounds(self, page: int | None) -> tuple[int, int]:
        """Return the [start, stop) export rows of a page, or of the whole export for None."""
        if page is None:
            return 0, self.plan.total
        start = (page - 1) * self.options.page_size
        return start, min(start + self.options.page_size, self.plan.total)

    def iter_values(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        """Generate the export rows [start, stop) as tuples of strings ("" is empty)."""
        return plan_values(self.dataset, self.plan, self.layout, start, stop)

    def rows(self) -> list[dict[str, str | None]]:
        """Return all rows exactly as pages serve them (without the row fault knobs)."""
        return as_objects(self.layout.columns, self.iter_values())


def plan_values(
    dataset: Dataset, plan: RowPlan, layout: ColumnLayout, start: int = 0, stop: int | None = None
) -> Iterator[Row]:
    """Generate the rows [start, stop) of a plan in a layout, as tuples of strings."""
    for day, indexes in plan.runs(start, plan.total if stop is None else stop):
        yield from layout.apply(dataset.rows(plan.feed_id, day, indexes), indexes)


def as_objects(columns: Sequence[str], values: Iterable[Row]) -> list[dict[str, str | None]]:
    """Turn rows into page objects: every value a string, or None when empty."""
    return [dict(zip(columns, [v or None for v in row], strict=True)) for row in values]


def spoil_first_row(
    row: Row,
    columns: Sequence[str],
    *,
    nul: bool,
    huge_bytes: int,
    texts: Mapping[str, str] | None = None,
    bundle_text: str | None = None,
) -> Row:
    """Apply the row knobs of the faults to an export's first row.

    They are `nul_in_csv`, `huge_field_bytes`, `first_row_texts` and `bundle_cell_text`.
    """
    target = columns.index("company_name") if "company_name" in columns else len(columns) - 1
    values = list(row)
    for column, text in (texts or {}).items():
        if column in columns:
            values[columns.index(column)] = text
    bundles = [i for i, name in enumerate(columns) if name.startswith("bundle_")]
    if bundle_text is not None and bundles:
        values[bundles[0]] = bundle_text
    if huge_bytes > 0:
        values[target] = ("Huge " * (huge_bytes // 5 + 1))[:huge_bytes]
    if nul:
        text = values[target] or "x"
        values[target] = text[: len(text) // 2] + "\x00" + text[len(text) // 2 :]
    return tuple(values)


def csv_chunks(
    export: Export,
    start: int,
    stop: int,
    *,
    first_row_is_export_start: bool,
    nul: bool = False,
    huge_bytes: int = 0,
    texts: Mapping[str, str] | None = None,
    bundle_text: str | None = None,
) -> Iterator[bytes]:
    """Yield the CSV of export rows [start, stop), header first, in encoded batches."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(export.columns)
    values = export.iter_values(start, stop)
    if first_row_is_export_start and (nul or huge_bytes or texts or bundle_text is not None):
        first = next(values, None)
        if first is not None:
            spoiled = spoil_first_row(
                first,
                export.columns,
                nul=nul,
                huge_bytes=huge_bytes,
                texts=texts,
                bundle_text=bundle_text,
            )
            values = itertools.chain([spoiled], values)
    while True:
        batch = list(itertools.islice(values, CSV_BATCH_ROWS))
        writer.writerows(batch)
        if buffer.tell():  # an empty chunk would end a chunked body
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
        if len(batch) < CSV_BATCH_ROWS:
            return
