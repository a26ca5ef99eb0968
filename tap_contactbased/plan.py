"""The plan of a run: what each feed's export will be and what the run would spend, free.

Settings, the exports in flight and the spend are each checked before anything is created,
every offender named at once. The result is each feed's job; `plan_only` logs each job's
`PlannedExport` line and starts nothing, otherwise the jobs go to the scheduler.
"""

from __future__ import annotations

import datetime
import time
import typing as t
from dataclasses import dataclass

from tap_contactbased import endpoints
from tap_contactbased.errors import ContractError, CreditError
from tap_contactbased.job import ExportJob, Phase, start_bookmark
from tap_contactbased.lifecycle import number_text
from tap_contactbased.run import feed_cap, settings_refusal, unknown_feeds_problem
from tap_contactbased.settings import SNAPSHOT
from tap_contactbased.state import InFlight, StateMismatchError, flight_misfits, future_bookmark
from tap_contactbased.summary import ExportOptions, ExportStatus
from tap_contactbased.windows import Window, plan_window, window_text

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Collection, Mapping, MutableMapping

    from tap_contactbased.job import WaitPolicy
    from tap_contactbased.lifecycle import ExportLifecycle
    from tap_contactbased.run import RunContext
    from tap_contactbased.settings import Settings

    FeedState = MutableMapping[str, t.Any]


@dataclass(frozen=True)
class PlannedExport:
    """One line of the plan: a feed's export to resume, to reuse, or to create."""

    feed_id: str
    action: t.Literal["resume", "reuse", "create"]
    window: Window | None = None
    export_id: str | None = None  # the export to resume or reuse
    described: str = ""  # the export to resume, as log lines name it
    total_rows: int | None = None  # of the export to create, as counted
    records_required: int | None = None

    def as_receipt(self) -> dict[str, t.Any]:
        """The line as the cost receipt's `exports_planned` lists it."""
        entry: dict[str, t.Any] = {"feed_id": self.feed_id}
        if self.window is not None:
            entry["start_date"] = self.window.start_date.isoformat()
            entry["end_date"] = self.window.end_date.isoformat()
        if self.action == "resume":
            entry["resume_export_id"] = self.export_id
        elif self.action == "reuse":
            entry["reuse_export_id"] = self.export_id
        else:
            entry.update(total_rows=self.total_rows, records_required=self.records_required)
        return entry

    def line(self) -> str:
        """The line as `plan_only` logs it."""
        if self.action == "resume":
            return f"Plan: would resume {self.described}; nothing to spend."
        if self.action == "reuse":
            return (
                f"Plan: would reuse export {self.export_id} of feed {self.feed_id}; "
                "nothing to spend."
            )
        return (
            f"Plan: would export feed {self.feed_id} for {window_text(self.window)}: "
            f"{number_text(self.total_rows)} rows, reserving {number_text(self.records_required)} "
            "records credits. Nothing was created (plan_only)."
        )


class Planner:
    """Plans the jobs of a run from its settings, its state and the API, for free."""

    def __init__(
        self,
        run: RunContext,
        lifecycle: ExportLifecycle,
        states: Mapping[str, FeedState],
        *,
        wait: WaitPolicy,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        delivered_before: Collection[str] = (),
    ) -> None:
        """Plan `run`'s feeds from `states`, but not those `delivered_before` in its snapshot."""
        self._run = run
        self.settings = run.settings
        self._lifecycle = lifecycle
        self._states = states
        self._wait = wait
        self._logger = logger
        self._clock = clock
        self._delivered_before = frozenset(delivered_before)

    def plan(self) -> tuple[ExportJob, ...]:
        """The jobs, or a `ConfigError`/`CreditError` naming every offending setting or state."""
        settings = self.settings
        caps = self.check_settings()
        today = self._lifecycle.api_today(settings.feed_ids[0])
        resumed = self._resume(today)
        self._run.check_pending_enrichment()
        planned: list[tuple[ExportJob, PlannedExport]] = []
        for feed_id in settings.feed_ids:
            if feed_id in self._delivered_before:
                self._logger.info(
                    "Feed %s was delivered by an earlier run in the snapshot this run "
                    "finishes: not exported again.",
                    feed_id,
                )
                continue
            earlier = resumed.get(feed_id)
            if earlier is not None:
                planned.append(earlier)
                if settings.export_mode == SNAPSHOT:
                    continue
            line = self._plan_feed(feed_id, caps[feed_id], today, earlier[0] if earlier else None)
            if line is not None:
                planned.append(line)
        if settings.plan_only:
            for _, row in planned:
                self._logger.info("%s", row.line())
                self._run.receipt.exports_planned.append(row.as_receipt())
        # Only exports still to create (counted, so still planned) are spent on.
        spend = {
            row.feed_id: row.records_required
            for job, row in planned
            if row.action == "create" and job.phase is Phase.PLANNED
        }
        check_spend(spend, settings, self._lifecycle, self._logger)
        return tuple(job for job, _ in planned)

    def check_settings(self) -> dict[str, int]:
        """Each feed's most lookback days, once every feed, bundle and lookback is known to fit.

        A `ConfigError` names every setting that does not fit, not only the first.
        """
        settings = self.settings
        feeds = self._run.feeds()
        problems = self._run.bundle_problems()
        unknown = [f for f in settings.feed_ids if f not in feeds]
        if unknown:
            problems.insert(0, unknown_feeds_problem(unknown, feeds))
        caps = {
            f: feed_cap(feeds[f]) or settings.lookback_days for f in settings.feed_ids if f in feeds
        }
        for feed_id, cap in caps.items():
            state = self._states[feed_id]
            fresh = "delivered_through" not in state and "in_flight" not in state
            if fresh and settings.lookback_days > cap:
                problems.append(
                    f"lookback_days is {settings.lookback_days} but feed {feed_id} allows at "
                    f"most {cap} (max_lookback_days)"
                )
        if problems:
            raise settings_refusal(problems)
        return caps

    def _resume(self, today: datetime.date) -> dict[str, tuple[ExportJob, PlannedExport]]:
        """Jobs for the exports earlier runs left in flight, looked up in one request.

        Before any is resumed, a `StateMismatchError` names every value the API contradicts.
        """
        flights: dict[str, InFlight] = {}
        problems: list[str | None] = []
        for feed_id in self.settings.feed_ids:
            state = self._states[feed_id]
            where = f"bookmarks.export_rows, feed {feed_id}"
            if "in_flight" in state:
                flight = InFlight.from_state(state["in_flight"], f"{where}, in_flight")
                flights[feed_id] = flight
                through = flight.deliver_through
                problems.append(
                    future_bookmark(through, today, f"{where}, in_flight.deliver_through")
                )
            through = state.get("delivered_through")
            problems.append(future_bookmark(through, today, f"{where}, delivered_through"))
        summaries = self._lifecycle.summaries([f.export_id for f in flights.values()])
        for feed_id, flight in flights.items():
            summary = summaries.get(flight.export_id)
            if summary is None or summary.status is ExportStatus.FAILED:
                continue
            where = f"bookmarks.export_rows, feed {feed_id}, in_flight"
            if not self._lifecycle.is_export_of(summary, feed_id):
                problems.append(
                    f"{where} names export {flight.export_id}, an export of feed "
                    f"{summary.feed_id or '(another)'} on the API: remove that in_flight entry"
                )
            problems.extend(flight_misfits(flight, summary, where))
        if any(problems):
            raise StateMismatchError([p for p in problems if p])
        jobs = {}
        for feed_id, flight in flights.items():
            summary = summaries.get(flight.export_id)
            job = ExportJob.resumed(feed_id, self._states[feed_id], flight)
            if summary is None or summary.status is ExportStatus.FAILED:
                self._logger.warning(
                    "The export %s left in flight for feed %s by an earlier run is %s; "
                    "planning a new one.",
                    flight.export_id,
                    feed_id,
                    "gone" if summary is None else "failed",
                )
                job.drop_flight()
                continue
            line = PlannedExport(
                feed_id, "resume", export_id=flight.export_id, described=job.describe(summary)
            )
            if not self.settings.plan_only:
                job.start(summary, self._clock())
                job.observe(summary, self._wait, self._clock())
                self._logger.info(
                    "Resuming %s after row %d, left in flight by an earlier run.",
                    job.describe(),
                    flight.rows_done,
                )
                self._run.receipt.exports_reused.append(flight.export_id)
            jobs[feed_id] = (job, line)
        return jobs

    def _plan_feed(
        self, feed_id: str, cap: int, today: datetime.date, earlier: ExportJob | None
    ) -> tuple[ExportJob, PlannedExport] | None:
        """The feed's next window, reused or counted; None when no complete day is left."""
        settings = self.settings
        state = self._states[feed_id]
        delivered = state.get("delivered_through")
        if earlier is not None:
            assert earlier.flight is not None
            delivered = earlier.flight.deliver_through
        window = plan_window(
            mode=settings.export_mode,
            today=today,
            lookback_days=settings.lookback_days,
            max_lookback_days=cap,
            delivered_through=None if delivered is None else datetime.date.fromisoformat(delivered),
        )
        if window is None:
            if earlier is None:  # else the feed's resumed export delivers what there is
                # A new feed's bookmark starts at yesterday.
                yesterday = (today - datetime.timedelta(days=1)).isoformat()
                if delivered is None and not settings.plan_only:
                    start_bookmark(state, yesterday)
                self._logger.info(
                    "Feed %s is delivered through %s: no complete day to export before %s.",
                    feed_id,
                    state.get("delivered_through", yesterday),
                    today,
                )
            return None
        if window.skipped_days:
            self._logger.warning(
                "Feed %s was last delivered through %s, more than its max_lookback_days (%d) "
                "ago: %d day(s) before %s cannot be exported any more and are skipped.",
                feed_id,
                delivered,
                cap,
                window.skipped_days,
                window.start_date,
            )
        options = ExportOptions.from_settings(settings, feed_id, window.lookback_days)
        job = ExportJob(feed_id, state, window=window, options=options, after=earlier)
        # After a resumed export the job waits until that export is delivered, and the
        # scheduler looks for an identical export then: an answer now would be stale.
        reusable = None
        if earlier is None:
            reusable = self._lifecycle.find_reusable(
                options, window.start_date, window.end_date, exclude=job.reuse_exclusions()
            )
        if reusable is not None:
            if not settings.plan_only:
                job.start(reusable, self._clock())
                self._logger.info(
                    "Reusing %s (%s) instead of creating one.", job.describe(), reusable.status_text
                )
                self._run.receipt.exports_reused.append(reusable.export_id)
                job.observe(reusable, self._wait, self._clock())
            return job, PlannedExport(feed_id, "reuse", window, export_id=reusable.export_id)
        try:
            count = self._lifecycle.count(options)
        except ContractError as exc:  # an answer beyond use stops only its feed
            job.fail(f"counting the export of feed {feed_id} failed: {exc}")
            return job, PlannedExport(feed_id, "create", window)
        job.counted(count.total_rows, count.cost)
        return job, PlannedExport(
            feed_id, "create", window, total_rows=count.total_rows, records_required=count.cost
        )


def check_spend(
    spend: Mapping[str, int | None],
    settings: Settings,
    lifecycle: ExportLifecycle,
    logger: logging.Logger,
) -> None:
    """Refuse, before anything is created, a run that would spend more than allowed."""
    if not spend:
        return
    known = {feed: cost for feed, cost in spend.items() if cost is not None}
    unknown = [feed for feed, cost in spend.items() if cost is None]
    total = sum(known.values())
    parts = "; ".join(f"feed {feed} {cost:,}" for feed, cost in known.items())
    reserve = f"This run would reserve {total:,} records credits ({parts})"
    not_said = (
        f"POST {endpoints.EXPORTS_COUNT} did not say what the export of feed(s) "
        f"{', '.join(unknown)} would reserve"
    )
    cap = settings.max_records_per_run
    if cap is not None and unknown:
        msg = (
            f"{not_said}, so the run cannot be held to max_records_per_run ({cap:,}); nothing "
            "was created. Report this difference."
        )
        raise CreditError(msg)
    if cap is not None and total > cap:
        msg = (
            f"{reserve}, more than max_records_per_run ({cap:,}) allows; nothing was "
            "created. Raise the cap, lower lookback_days or max_rows, or run fewer feeds."
        )
        raise CreditError(msg)
    remaining = lifecycle.credits_remaining()
    if remaining is None:
        logger.warning(
            "GET %s did not say what is left; the API itself refuses (402) an export the pool "
            "cannot pay for.",
            endpoints.CREDITS,
        )
    elif total > remaining:
        msg = (
            f"{reserve}, but only {remaining:,} are left in the credit pool; nothing was "
            "created. Lower lookback_days or max_rows, or add credits."
        )
        raise CreditError(msg)
    if unknown:
        logger.warning("%s; they are created without that check.", not_said)
