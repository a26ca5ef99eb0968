"""The enrichment stream: bulk /enrich/<bundle> for the contacts the exports produced.

Enrichment is billed per contact and bundle, so ids are deduplicated across the run,
malformed ids are never sent, and a cap bounds the spend. The ids come from the rows the
export stream delivered in this run and, after a crash, from the delivered exports still
listed as pending in the state, read again from the API (free: exports are frozen).
"""

from __future__ import annotations

import datetime
import logging
import re
import typing as t
from collections import Counter

from typing_extensions import override

from tap_contactbased import endpoints, schemas
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.coercion import RowTyper, TypedChunk
from tap_contactbased.errors import ApiError
from tap_contactbased.lifecycle import ExportLifecycle
from tap_contactbased.readers import ExportToRead, make_reader
from tap_contactbased.run import settings_refusal
from tap_contactbased.settings import CONTACT_ID_PATTERN
from tap_contactbased.summary import ExportStatus

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_contactbased.run import RunContext

BATCH_SIZE = 1000
CONTACT_ID = re.compile(CONTACT_ID_PATTERN)
# What a re-read types: the id, and the day that says whether the row was delivered.
ID_AND_DAY = {name: schemas.ROW_COLUMN_TYPES[name] for name in ("contact_id", "signal_date")}


def batches(ids: Sequence[str], size: int = BATCH_SIZE) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class EnrichmentStream(ContactBasedStream):
    """One record per contact and bundle: contact_id, bundle, found, data, enriched_at.

    No version: a run enriches only the contacts of its own exports; the earlier ones stay.
    """

    name = "enrichment"
    primary_keys = ("contact_id", "bundle")

    def __init__(self, tap: Tap, run: RunContext) -> None:
        """`data` knows the fields of the bundles asked for, and only those.

        A flattening target would otherwise get a column for every field of every bundle.
        With no bundle asked for, the stream is empty and shows them all.
        """
        bundles = run.settings.enrichment_bundles or schemas.BUNDLE_KEYS
        super().__init__(tap, run, schemas.enrichment_schema(bundles))

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        settings = self.settings
        if not settings.enrichment_bundles:
            self.logger.info("enrichment_bundles is empty: the enrichment stream emits nothing.")
            return
        if problems := self.run.bundle_problems():  # before anything is spent
            raise settings_refusal(problems)
        if self.run.connection_test:
            self.logger.info("Connection test: enrichment bundles are enabled; nothing enriched.")
            return
        self.run.check_pending_enrichment()
        pending = self.run.pending_enrichment.entries()
        ids = self._wanted_ids(pending)
        try:
            yield from self._enrich(ids)
        except BaseException:
            self.run.receipt_on_failure()
            raise
        self.run.pending_enrichment.clear({entry["export_id"] for entry in pending})
        self.write_checkpoint()

    @override
    def log_sync_costs(self) -> None:
        """The SDK calls this on every stream once all have synced, this one last (tap.py).

        So the run ends here: the cost receipt, then the feeds that did not finish.
        """
        super().log_sync_costs()
        self.run.finish(logging.getLogger(self.tap_name))

    def _wanted_ids(self, pending: list[dict[str, t.Any]]) -> list[str]:
        """Unique, well-formed ids to send, within the cap; the rest is counted."""
        wanted = dict(self.run.contacts)
        for entry in pending:
            if entry["export_id"] not in self.run.complete_exports:
                wanted.update(dict.fromkeys(self._reread_contact_ids(entry)))
        wanted.update(dict.fromkeys(self.settings.enrichment_contact_ids))
        valid = [cid for cid in wanted if CONTACT_ID.match(cid)]
        malformed = len(wanted) - len(valid)
        receipt = self.run.receipt
        if malformed:
            receipt.malformed_contact_ids += malformed
            self.logger.warning(
                "Skipped %d malformed contact id(s) (not id_ + 16 lowercase hex); not sent.",
                malformed,
            )
        cap = self.settings.enrichment_max_contacts
        if cap is not None and len(valid) > cap:
            receipt.enrichment_contacts_held_back += len(valid) - cap
            self.logger.warning(
                "enrichment_max_contacts is %d: %d of %d contact(s) are held back this run.",
                cap,
                len(valid) - cap,
                len(valid),
            )
            valid = valid[:cap]
        return valid

    def _reread_contact_ids(self, entry: dict[str, t.Any]) -> Iterator[str]:
        """Contact ids of a delivered export whose rows this run did not all see."""
        export_id = entry["export_id"]
        export = ExportLifecycle(self.client, self.logger).summaries([export_id]).get(export_id)
        if export is None or export.status is not ExportStatus.READY:
            self.logger.warning(
                "Export %s awaits enrichment but is %s; its contacts are skipped.",
                export_id,
                "gone" if export is None else export.status_text,
            )
            return
        name = f"export {export_id} of feed {entry.get('feed_id')}"
        self.logger.info("Reading the contact ids of %s again for enrichment.", name)
        to_read = ExportToRead.of(export, name, page_size=self.settings.page_size)
        reader = make_reader(self.settings.read_mode, self.client, to_read)
        through = entry.get("deliver_through")
        for chunk in reader.chunks(1):
            # The rows the run delivered, chosen as the delivery chose them.
            for record in TypedChunk(chunk, RowTyper(chunk.header, ID_AND_DAY, {}), through, None):
                if contact_id := record["contact_id"]:
                    yield contact_id

    def _enrich(self, ids: list[str]) -> Iterator[dict[str, t.Any]]:
        bundles = self.settings.enrichment_bundles
        found: Counter[str] = Counter()
        receipt = self.run.receipt
        for batch in batches(ids):
            for bundle in bundles:
                results = self._enrich_batch(bundle, batch)
                receipt.enrichment_ids_sent[bundle] += len(batch)
                enriched_at = datetime.datetime.now(datetime.timezone.utc).isoformat()
                for contact_id in batch:
                    data = results[contact_id]
                    found[bundle] += data is not None
                    yield {
                        "contact_id": contact_id,
                        "bundle": bundle,
                        "found": data is not None,
                        "data": data,
                        "enriched_at": enriched_at,
                    }
        for bundle in bundles:
            self.logger.info(
                "Enrichment %s: %s requested, %s found, %s not found.",
                bundle,
                f"{len(ids):,}",
                f"{found[bundle]:,}",
                f"{len(ids) - found[bundle]:,}",
            )

    def _enrich_batch(
        self, bundle: str, batch: Sequence[str]
    ) -> dict[str, dict[str, t.Any] | None]:
        """The data found for each id of a batch (None: not found), matched by `contact_id`."""
        path = endpoints.enrich(bundle)
        answer = self.client.post(path, {"contact_ids": list(batch)})
        listed = answer.get("results") if isinstance(answer, dict) else None
        results: dict[str, dict[str, t.Any]] = {}
        for result in listed if isinstance(listed, list) else []:
            if isinstance(result, dict) and result.get("contact_id"):
                results[str(result["contact_id"])] = result
        asked = set(batch)
        if results.keys() != asked:
            missing, unasked = len(asked - results.keys()), len(results.keys() - asked)
            msg = (
                f"POST {path} answered a batch of {len(batch)} ids with results that do not "
                f"match it ({missing} id(s) missing, {unasked} not asked for); no record of "
                "this answer was emitted."
            )
            raise ApiError(msg)
        return {contact_id: found_data(path, result) for contact_id, result in results.items()}


def found_data(path: str, result: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The payload of one result, or None when the contact was not found.

    `found` and `data` are [assumed, docs/contactbased-api.md]: without `found`, the
    presence of data says it; a contact found without a payload object is an error, never
    an empty record.
    """
    data = result.get("data")
    found = result.get("found")
    if found is None:
        found = data is not None
    if not found:
        return None
    if not isinstance(data, dict):
        msg = (
            f"POST {path} answered that {result.get('contact_id')} was found but gave no data "
            "object; no record of this answer was emitted. Report this difference."
        )
        raise ApiError(msg)
    return data
