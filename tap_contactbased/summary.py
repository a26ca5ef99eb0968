"""Exports as the API describes them, read without trusting what the contract only assumes.

Only `status`, `build_progress` and `build_error` of an export summary are documented; every
other field is [assumed] (docs/contactbased-api.md) and may be missing on the real API. So
each field here is optional: a missing count is None, never 0, and a missing echoed option
makes a summary "unproven" rather than "different" or "the same".
"""

from __future__ import annotations

import enum
import json
import typing as t
from dataclasses import dataclass

from tap_contactbased.values import optional_int

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_contactbased.settings import Settings


class ExportStatus(enum.Enum):
    """The documented statuses of an export; anything else is unknown, never guessed."""

    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"

    @classmethod
    def parse(cls, raw: t.Any) -> ExportStatus | None:
        """The status a text means, ignoring case and surrounding spaces; None if unknown."""
        if not isinstance(raw, str):
            return None
        try:
            return cls(raw.strip().lower())
        except ValueError:
            return None


@dataclass(frozen=True)
class ExportSummary:
    """An export as the API describes it; `raw` keeps every field it sent."""

    raw: Mapping[str, t.Any]

    @property
    def export_id(self) -> str:
        """The export's id (summaries without one are refused where they are read)."""
        return str(self.raw["export_id"])

    @property
    def feed_id(self) -> str | None:
        value = self.raw.get("feed_id")
        return None if value is None else str(value).lower()

    @property
    def status_text(self) -> str:
        """The status as the API wrote it."""
        return str(self.raw.get("status"))

    @property
    def status(self) -> ExportStatus | None:
        """The status, or None when the API reports one the tap does not know."""
        return ExportStatus.parse(self.raw.get("status"))

    @property
    def progress(self) -> float | None:
        """Build progress from 0 to 1, when the API reports it."""
        value = self.raw.get("build_progress")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    @property
    def start_date(self) -> str | None:
        value = self.raw.get("start_date")
        return None if value is None else str(value)

    @property
    def end_date(self) -> str | None:
        """Last day of the window: the day the export was made."""
        value = self.raw.get("end_date")
        return None if value is None else str(value)

    @property
    def total_rows(self) -> int | None:
        return optional_int(self.raw.get("total_rows"))

    @property
    def total_pages(self) -> int | None:
        return optional_int(self.raw.get("total_pages"))

    @property
    def page_size(self) -> int | None:
        return optional_int(self.raw.get("page_size"))

    @property
    def columns(self) -> list[str]:
        """The columns of a ready export, in order (empty when the API leaves them out)."""
        columns = self.raw.get("columns")
        return [str(c) for c in columns] if isinstance(columns, list) else []

    @property
    def records_reserved(self) -> int | None:
        return optional_int(self.raw.get("records_reserved"))

    @property
    def created_at(self) -> str | None:
        value = self.raw.get("created_at")
        return None if value is None else str(value)


class Match(enum.Enum):
    """Whether an export summary shows the options a run asks for."""

    SAME = "same"
    DIFFERENT = "different"
    UNPROVEN = "unproven"  # the summary does not echo every option the run sets


def _optional_bool(value: t.Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _echoed_filters(value: t.Any) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        return None
    return _canonical_filters(value)


def _echoed_bundles(value: t.Any) -> list[str] | None:
    if value is None:
        return []
    return sorted(str(b) for b in value) if isinstance(value, list) else None


def _canonical_filters(filters: t.Iterable[Mapping[str, t.Any]]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in filters)


@dataclass(frozen=True)
class ExportOptions:
    """What defines an export: the body of preview, count and create."""

    feed_id: str
    lookback_days: int
    page_size: int
    max_rows: int | None = None
    require_contact_id: bool = False
    consumer_filters: tuple[Mapping[str, t.Any], ...] = ()
    enrichment_bundles: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, feed_id: str, lookback_days: int) -> ExportOptions:
        return cls(
            feed_id=feed_id,
            lookback_days=lookback_days,
            page_size=settings.page_size,
            max_rows=settings.max_rows,
            require_contact_id=settings.require_contact_id,
            consumer_filters=settings.consumer_filters,
            enrichment_bundles=settings.export_bundles,
        )

    @property
    def effective_require_contact_id(self) -> bool:
        """Filters and bundles force rows with a contact id [doc]."""
        return self.require_contact_id or bool(self.consumer_filters or self.enrichment_bundles)

    def body(self) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {
            "feed_id": self.feed_id,
            "lookback_days": self.lookback_days,
            "page_size": self.page_size,
            "require_contact_id": self.effective_require_contact_id,
        }
        if self.max_rows is not None:
            body["max_rows"] = self.max_rows
        if self.consumer_filters:
            body["consumer_filters"] = [dict(f) for f in self.consumer_filters]
        if self.enrichment_bundles:
            body["enrichment_bundles"] = list(self.enrichment_bundles)
        return body

    def compare(self, summary: ExportSummary) -> tuple[Match, list[str]]:
        """Whether `summary` was made with these options, and the options it does not echo.

        Every option the run sends must be echoed and equal. An option the run leaves
        unset may be absent from the summary; if it is echoed, it must be unset there too.
        """
        raw = summary.raw
        sent: dict[str, t.Any] = {
            "lookback_days": self.lookback_days,
            "page_size": self.page_size,
            "require_contact_id": self.effective_require_contact_id,
        }
        unset: dict[str, t.Any] = {}
        for name, value, empty in (
            ("max_rows", self.max_rows, None),
            ("consumer_filters", _canonical_filters(self.consumer_filters), []),
            ("enrichment_bundles", sorted(self.enrichment_bundles), []),
        ):
            (sent if value != empty else unset)[name] = value
        echoed: dict[str, t.Callable[[t.Any], t.Any]] = {
            "lookback_days": optional_int,
            "page_size": optional_int,
            "max_rows": optional_int,
            "require_contact_id": _optional_bool,
            "consumer_filters": _echoed_filters,
            "enrichment_bundles": _echoed_bundles,
        }
        missing: list[str] = []
        for name, wanted in sent.items():
            if name not in raw:
                missing.append(name)
            elif echoed[name](raw[name]) != wanted:
                return Match.DIFFERENT, []
        for name, empty in unset.items():
            if name in raw and echoed[name](raw[name]) != empty:
                return Match.DIFFERENT, []
        if summary.feed_id is None:
            missing.insert(0, "feed_id")
        elif summary.feed_id != self.feed_id.lower():
            return Match.DIFFERENT, []
        return (Match.UNPROVEN, missing) if missing else (Match.SAME, [])
