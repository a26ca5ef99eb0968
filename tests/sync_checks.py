"""The end result of a sync checked against what the local API served and charged."""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass

from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased


@dataclass
class Outcome:
    """The figures the fault matrix reports for one scenario."""

    rows_expected: int
    rows_lost: int
    rows_wrong: int  # keys present with other content than served (a duplicate that differs)
    rows_resent: int  # records emitted more than once (same key, same content)
    exports_created: int
    exports_ready: int
    records_spent: int
    enrichment_missing: int
    enrichment_overcharged: int


def check_sync(
    api: FakeContactBased,
    export_records: list[dict[str, t.Any]],
    enrichment_records: list[dict[str, t.Any]],
    bundles: t.Sequence[str],
    through: datetime.date | None,
) -> Outcome:
    """Compare what a target would hold after upserting by primary key with what was served."""
    ready = [e for e in api.created_exports if api.exports[e].status == "ready"]
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in ready:
        expected.update(delivered_rows(api, export_id, through))
    loaded = by_key(export_records)
    lost = len(expected.keys() - loaded.keys())
    wrong = sum(1 for key, row in loaded.items() if expected.get(key) != row)
    contacts = {r["contact_id"] for r in expected.values() if r.get("contact_id")}
    enriched = {(r["contact_id"], r["bundle"]) for r in enrichment_records}
    missing = len({(c, b) for c in contacts for b in bundles} - enriched)
    overcharged = sum(len(api.enrichment_charged[b] - contacts) for b in bundles)
    credits = api.credits
    return Outcome(
        rows_expected=len(expected),
        rows_lost=lost,
        rows_wrong=wrong,
        rows_resent=len(export_records) - len(loaded),
        exports_created=len(api.created_exports),
        exports_ready=len(ready),
        records_spent=int(credits["records_used"]) + int(credits["records_reserved"]),
        enrichment_missing=missing,
        enrichment_overcharged=overcharged,
    )
