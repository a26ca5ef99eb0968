"""What the streams of one run share: the API client, the feeds, the contacts, the receipt."""

from __future__ import annotations

import contextvars
import json
import logging
import typing as t
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from tap_contactbased import endpoints
from tap_contactbased.api_client import LOGGER, ApiClient
from tap_contactbased.errors import ConfigError, ExportError, left_out
from tap_contactbased.lifecycle import ExportLifecycle
from tap_contactbased.pagination import envelope_items
from tap_contactbased.state import StateMismatchError, pending_misfits, pending_proof
from tap_contactbased.values import is_int

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping, Sequence

    from tap_contactbased.job import ExportJob
    from tap_contactbased.settings import Settings

# Set while `--test` runs: the streams then check access for free and create nothing.
CONNECTION_TEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "connection_test", default=False
)


def feed_cap(feed: Mapping[str, t.Any]) -> int | None:
    """A feed's `max_lookback_days`, when the API gives it as a positive whole number."""
    cap = feed.get("max_lookback_days")
    return cap if is_int(cap) and cap > 0 else None


def unknown_feeds_problem(unknown: Sequence[str], feeds: Mapping[str, t.Any]) -> str:
    """The problem with configured feeds the organization does not have, naming those it has."""
    known = ", ".join(sorted(feeds)) or "none"
    return (
        f"feed_ids contains {', '.join(unknown)}, not a feed of this organization "
        f"(known feeds: {known})"
    )


def settings_refusal(problems: Sequence[str]) -> ConfigError:
    """The one refusal of settings that do not fit the organization, naming every problem."""
    return ConfigError(
        f"The settings do not fit this organization, so nothing was created: "
        f"{'; '.join(problems)}. Fix them (the feeds and bundles streams list what exists) "
        "and run again."
    )


@dataclass
class Receipt:
    """What a run spent and what its caps held back, for users reconciling their bill."""

    exports_created: list[dict[str, t.Any]] = field(default_factory=list)
    exports_reused: list[str] = field(default_factory=list)
    exports_planned: list[dict[str, t.Any]] = field(default_factory=list)
    enrichment_ids_sent: Counter[str] = field(default_factory=Counter)
    enrichment_contacts_held_back: int = 0
    malformed_contact_ids: int = 0
    logged: bool = False

    def log_once(self, logger: logging.Logger) -> None:
        """Log the receipt as one line and one structured event, once per run."""
        if self.logged:
            return
        self.logged = True
        reserved = sum(int(e["records_reserved"]) for e in self.exports_created)
        sent = ", ".join(f"{k} {v:,}" for k, v in sorted(self.enrichment_ids_sent.items()))
        payload = {
            "exports_created": len(self.exports_created),
            "records_reserved": reserved,
            "exports_reused": len(self.exports_reused),
            "exports_planned": self.exports_planned,
            "created": self.exports_created,
            "reused": self.exports_reused,
            "enrichment_ids_sent": dict(self.enrichment_ids_sent),
            "enrichment_contacts_held_back": self.enrichment_contacts_held_back,
            "malformed_contact_ids_skipped": self.malformed_contact_ids,
        }
        line = (
            f"Cost receipt: {len(self.exports_created)} export(s) created reserving "
            f"{reserved:,} records credits, {len(self.exports_reused)} reused, "
            f"{len(self.exports_planned)} planned only; enrichment ids sent: {sent or 'none'}; "
            f"held back by enrichment_max_contacts: {self.enrichment_contacts_held_back:,} "
            f"contact(s); malformed contact ids skipped: {self.malformed_contact_ids:,}."
        )
        logger.info("%s", line, extra={"cost_receipt": payload})
        logger.debug("Cost receipt detail: %s", json.dumps(payload, sort_keys=True))


class PendingEnrichment:
    """Exports whose contacts still await enrichment, kept in the enrichment stream's state.

    A run killed between the delivery and the enrichment finds the export here, and reads its
    contact ids again from the API (free, exports are frozen): the ids are never stored. Each
    entry carries a proof that this tap wrote it (`state.pending_proof`).
    """

    def __init__(
        self, enrichment_state: Callable[[], MutableMapping[str, t.Any]], proof_key: bytes
    ) -> None:
        self._state = enrichment_state
        self.proof_key = proof_key
        self.checked = False  # against the API, once per run

    def _entries(self) -> list[dict[str, t.Any]]:
        entries: list[dict[str, t.Any]] = self._state().setdefault("pending_exports", [])
        return entries

    def add(self, export_id: str, feed_id: str, deliver_through: str | None) -> None:
        """Remember a delivered export until its contacts are enriched."""
        entries = self._entries()
        if all(e["export_id"] != export_id for e in entries):
            proof = pending_proof(self.proof_key, export_id, feed_id, deliver_through)
            entries.append(
                {
                    "export_id": export_id,
                    "feed_id": feed_id,
                    "deliver_through": deliver_through,
                    "proof": proof,
                }
            )

    def entries(self) -> list[dict[str, t.Any]]:
        """The exports waiting, oldest first."""
        return [dict(e) for e in self._entries()]

    def clear(self, export_ids: t.Collection[str]) -> None:
        """Forget exports whose contacts are all enriched."""
        state = self._state()
        remaining = [e for e in self._entries() if e["export_id"] not in export_ids]
        if remaining:
            state["pending_exports"] = remaining
        else:
            state.pop("pending_exports", None)


class RunContext:
    """The objects the streams of one run share, created once by the tap."""

    def __init__(
        self,
        settings: Settings,
        enrichment_state: Callable[[], MutableMapping[str, t.Any]],
        enrichment_selected: Callable[[], bool],
        *,
        api_key: str = "",
        proof_key: bytes = b"",
        last_export_id: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        """Share `settings`; the callables reach the streams once they exist."""
        self.settings = settings
        self._api_key = api_key
        self._last_export_id = last_export_id
        self.receipt = Receipt()
        # The export rows' contact ids in first-seen order: in memory only, never in the state.
        self.contacts: dict[str, None] = {}
        self.complete_exports: set[str] = set()  # exports read whole in this run
        self.pending_enrichment = PendingEnrichment(enrichment_state, proof_key)
        self._enrichment_selected = enrichment_selected
        self._feeds: dict[str, dict[str, t.Any]] | None = None
        self._enabled_bundles: list[str] | None = None
        self.connection_test = CONNECTION_TEST.get()
        self.export_failures: list[str] = []

    @cached_property
    def client(self) -> ApiClient:
        return ApiClient.from_settings(self.settings, self._api_key)

    def check_pending_enrichment(self) -> None:
        """Refuse, once and before anything is spent, pending entries this tap did not write.

        The API is asked (free) whose export each entry names.
        """
        pending = self.pending_enrichment
        if not self.enrichment_active or pending.checked:
            return
        pending.checked = True
        entries = pending.entries()
        if not entries:
            return
        lifecycle = ExportLifecycle(self.client, logging.getLogger(LOGGER))
        problems = pending_misfits(
            entries,
            feed_ids=self.settings.feed_ids,
            key=pending.proof_key,
            last_export_id=self._last_export_id,
            summaries=lifecycle.summaries([entry["export_id"] for entry in entries]),
            is_export_of=lifecycle.is_export_of,
        )
        if problems:
            raise StateMismatchError(problems)

    @property
    def enrichment_active(self) -> bool:
        return bool(self.settings.enrichment_bundles) and self._enrichment_selected()

    def feeds(self) -> dict[str, dict[str, t.Any]]:
        """The organization's feeds by lower-case id, listed once per run."""
        if self._feeds is not None:
            return self._feeds
        size = endpoints.FEEDS_PAGE_SIZE
        listed = list(
            envelope_items(
                lambda page: self.client.get(endpoints.FEEDS, {"page": page, "page_size": size}),
                size,
                f"GET {endpoints.FEEDS}",
            )
        )
        self._feeds = {
            str(feed["feed_id"]).lower(): feed
            for feed in listed
            if isinstance(feed, dict) and feed.get("feed_id")
        }
        if len(self._feeds) < len(listed):
            raise left_out(
                f"GET {endpoints.FEEDS}",
                "a feed_id for every feed",
                "the tap cannot tell which feeds exist and stops",
            )
        return self._feeds

    def feed(self, feed_id: str) -> dict[str, t.Any]:
        """A configured feed, checked against the organization's feeds."""
        feeds = self.feeds()
        found = feeds.get(feed_id.lower())
        if found is None:
            raise settings_refusal([unknown_feeds_problem([feed_id], feeds)])
        return found

    def bundle_problems(self) -> list[str]:
        """What the bundle settings ask for that the organization has not enabled."""
        lists = [("export_bundles", self.settings.export_bundles)]
        if self.enrichment_active:
            lists.append(("enrichment_bundles", self.settings.enrichment_bundles))
        if not any(bundles for _, bundles in lists):
            return []
        if self._enabled_bundles is None:
            answer = self.client.get(endpoints.BUNDLES)
            listed = answer.get("bundles") if isinstance(answer, dict) else None
            self._enabled_bundles = [
                str(b["key"])
                for b in listed or []
                if isinstance(b, dict) and b.get("key") and b.get("enabled", True) is not False
            ]
        enabled = self._enabled_bundles
        problems = []
        for name, bundles in lists:
            refused = [b for b in bundles if b not in enabled]
            if refused:
                problems.append(
                    f"{name} asks for {', '.join(refused)}, not enabled for this organization "
                    f"(enabled bundles: {', '.join(enabled) or 'none'})"
                )
        return problems

    def receipt_on_failure(self) -> None:
        """A run that fails or is interrupted still says what it created and reserved."""
        self.receipt.log_once(logging.getLogger(LOGGER))

    def finish(self, logger: logging.Logger) -> None:
        """End the run: the cost receipt, then a failure naming the feeds that did not finish."""
        self.receipt.log_once(logger)
        failures, self.export_failures = self.export_failures, []
        if failures:
            msg = (
                f"{len(failures)} feed(s) did not finish: {'; '.join(failures)}. The other "
                "feeds were delivered; the next run resumes or replaces what did not finish."
            )
            raise ExportError(msg)

    def export_delivered(self, job: ExportJob) -> None:
        """Note a delivered export for the enrichment stream (its contacts await enrichment)."""
        if not self.enrichment_active:
            return
        assert job.flight is not None
        if job.read_from_start:
            self.complete_exports.add(job.flight.export_id)
        self.pending_enrichment.add(job.flight.export_id, job.feed_id, job.flight.deliver_through)
