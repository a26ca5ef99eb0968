"""The export run: check every feed and the whole spend, build at once, deliver each when ready.

1. Plan, free of charge: resolve every configured feed and bundle and each feed's lookback
   against the organization, naming every offender at once; resume the exports the state
   names; plan each feed's window; reuse an identical export; count the ones to create.
2. Preflight: the records the creations would reserve, summed, against
   `max_records_per_run` and the credit pool. A refusal names the total and the parts.
3. Build: create the exports, at most `max_concurrent_exports` building at a time, and
   write the state right after, so that a kill while they build resumes every one of them.
4. Wait for all together (one list request per poll) and read each as soon as it is ready,
   while the others go on building; a freed slot starts the next creation.

A job that fails (build failed, stalled, unreadable, refused) stops only its feed; the run
delivers the other feeds and reports the failed ones at the end.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
import typing as t
from http import HTTPStatus

from tap_contactbased.errors import (
    ApiError,
    ConfigError,
    ContractError,
    CreditError,
    ExportError,
    TransientApiError,
)
from tap_contactbased.job import WAITING, ExportJob, Origin, Phase, start_bookmark
from tap_contactbased.lifecycle import describe_counts
from tap_contactbased.state import InFlight, StateMismatchError, flight_misfits, future_bookmark
from tap_contactbased.summary import ExportOptions, ExportStatus
from tap_contactbased.windows import SNAPSHOT, Window, plan_window

if t.TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, MutableMapping

    from tap_contactbased.api_client import ApiClient
    from tap_contactbased.job import WaitPolicy
    from tap_contactbased.lifecycle import ExportLifecycle
    from tap_contactbased.retry import RetryPolicy
    from tap_contactbased.run import RunContext
    from tap_contactbased.settings import Settings
    from tap_contactbased.summary import ExportSummary

    Record = dict[str, t.Any]

# Another identical export created this close to ours was made by a concurrent run.
OVERLAP_SECONDS = 60.0


class ExportRun:
    """Every configured feed's export in one run."""

    def __init__(
        self,
        *,
        api: ApiClient,
        lifecycle: ExportLifecycle,
        run: RunContext,
        wait: WaitPolicy,
        retry: RetryPolicy,
        state_of: Callable[[str], MutableMapping[str, t.Any]],
        checkpoint: Callable[[], None],
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        delivered_before: Collection[str] = (),
    ) -> None:
        """Drive the exports of `run`'s settings; `checkpoint` writes a STATE message.

        `delivered_before`: feeds an earlier run already delivered in the snapshot this run
        finishes (`snapshot.SnapshotVersion`): not exported again.
        """
        self._api = api
        self._lifecycle = lifecycle
        self._run = run
        self._wait = wait
        self._retry = retry
        self._state_of = state_of
        self._checkpoint = checkpoint
        self._logger = logger
        self._clock = clock
        self._sleep = sleep
        self._delivered_before = frozenset(delivered_before)
        self.jobs: list[ExportJob] = []
        self._interval = min(wait.first_interval_seconds, wait.max_interval_seconds)
        self._next_poll = 0.0

    @property
    def settings(self) -> Settings:
        return self._run.settings

    # 1. Plan

    def plan(self) -> list[ExportJob]:
        """Every job of the run, or a `ConfigError` naming every offending setting or state."""
        settings = self.settings
        feeds = self.check_settings()
        today = self._lifecycle.api_today(settings.feed_ids[0])
        resumed = self._resume_in_flight(today)
        self._run.check_pending_enrichment(self._api)
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
                self.jobs.append(earlier)
                if settings.export_mode == SNAPSHOT:
                    continue
            self._plan_window(feed_id, self._cap(feeds[feed_id]), today, earlier)
        return self.jobs

    def check_settings(self) -> dict[str, dict[str, t.Any]]:
        """The organization's feeds, once every feed, bundle and lookback is known to fit.

        A `ConfigError` names every setting that does not fit, not only the first.
        """
        settings = self.settings
        feeds = self._run.feeds(self._api)
        problems = self._run.bundle_problems(self._api)
        unknown = [f for f in settings.feed_ids if f not in feeds]
        if unknown:
            known = ", ".join(sorted(feeds)) or "none"
            problems.insert(
                0,
                f"feed_ids contains {', '.join(unknown)}, not a feed of this organization "
                f"(known feeds: {known})",
            )
        for feed_id in settings.feed_ids:
            cap = self._cap(feeds.get(feed_id))
            state = self._state_of(feed_id)
            fresh = "delivered_through" not in state and "in_flight" not in state
            if feed_id in feeds and fresh and settings.lookback_days > cap:
                problems.append(
                    f"lookback_days is {settings.lookback_days} but feed {feed_id} allows at "
                    f"most {cap} (max_lookback_days)"
                )
        if problems:
            msg = (
                f"The settings do not fit this organization, so nothing was created: "
                f"{'; '.join(problems)}. Fix them (the feeds and bundles streams list what "
                "exists) and run again."
            )
            raise ConfigError(msg)
        return feeds

    def _cap(self, feed: dict[str, t.Any] | None) -> int:
        cap = (feed or {}).get("max_lookback_days")
        return int(cap) if isinstance(cap, int) and cap > 0 else self.settings.lookback_days

    def _resume_in_flight(self, today: datetime.date) -> dict[str, ExportJob]:
        """Jobs for the exports earlier runs left in flight, looked up in one request.

        Before any of them is resumed, the state is checked against the API: each export
        in flight must be its feed's, of the window and size the state says, and no day
        delivered after the API's today. A `StateMismatchError` names every misfit.
        """
        flights: dict[str, InFlight] = {}
        problems: list[str | None] = []
        for feed_id in self.settings.feed_ids:
            state = self._state_of(feed_id)
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
            if summary is not None and summary.status is not ExportStatus.FAILED:
                problems.extend(self._misfits(feed_id, flight, summary))
        if any(problems):
            raise StateMismatchError([p for p in problems if p])
        jobs = {}
        for feed_id, flight in flights.items():
            summary = summaries.get(flight.export_id)
            job = ExportJob.resumed(feed_id, self._state_of(feed_id), flight)
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
            if not self.settings.plan_only:
                job.start(summary, Origin.RESUMED, self._clock())
                job.observe(summary, self._wait, self._clock())
                self._logger.info(
                    "Resuming %s after row %d, left in flight by an earlier run.",
                    job.describe(),
                    flight.rows_done,
                )
                self._run.receipt.exports_reused.append(flight.export_id)
            else:
                job.would_use(summary)
            jobs[feed_id] = job
        return jobs

    def _misfits(self, feed_id: str, flight: InFlight, summary: ExportSummary) -> list[str]:
        """What the API contradicts in a feed's export in flight, the feed's own included."""
        where = f"bookmarks.export_rows, feed {feed_id}, in_flight"
        problems = flight_misfits(flight, summary, where)
        if not self._lifecycle.is_export_of(summary, feed_id):
            problems.insert(
                0,
                f"{where} names export {flight.export_id}, an export of feed "
                f"{summary.feed_id or '(another)'} on the API: remove that in_flight entry",
            )
        return problems

    def _plan_window(
        self, feed_id: str, cap: int, today: datetime.date, earlier: ExportJob | None
    ) -> None:
        settings = self.settings
        state = self._state_of(feed_id)
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
        yesterday = (today - datetime.timedelta(days=1)).isoformat()
        if window is None:
            if delivered is None and earlier is None and not settings.plan_only:
                start_bookmark(state, yesterday)
            if earlier is None:
                self._logger.info(
                    "Feed %s is delivered through %s: no complete day to export before %s.",
                    feed_id,
                    state.get("delivered_through", yesterday),
                    today,
                )
            return
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
        reusable = self._lifecycle.find_reusable(
            options, window.start_date, window.end_date, exclude=job.reuse_exclusions()
        )
        self.jobs.append(job)
        if reusable is not None and earlier is None:
            if settings.plan_only:
                job.would_use(reusable)
                return
            job.start(reusable, Origin.REUSED, self._clock())
            self._logger.info(
                "Reusing %s (%s) instead of creating one.", job.describe(), reusable.status_text
            )
            self._run.receipt.exports_reused.append(reusable.export_id)
            job.observe(reusable, self._wait, self._clock())
            return
        try:
            count = self._lifecycle.count(options)
        except ContractError as exc:  # an answer beyond use stops only its feed
            job.fail(f"counting the export of feed {feed_id} failed: {exc}")
            return
        job.counted(count.total_rows, count.cost)

    # 2. Preflight

    def preflight(self) -> None:
        """Refuse, before anything is created, a run that would spend more than allowed."""
        to_create = [job for job in self.jobs if job.phase is Phase.PLANNED and job.options]
        if self.settings.plan_only:
            self._report_plan()
        if not to_create:
            return
        parts = {job.feed_id: job.records_required for job in to_create}
        known = {feed: cost for feed, cost in parts.items() if cost is not None}
        total = sum(known.values())
        unknown = [feed for feed, cost in parts.items() if cost is None]
        spend = f"This run would reserve {total:,} records credits ({describe_counts(known)})"
        cap = self.settings.max_records_per_run
        if cap is not None and unknown:
            msg = (
                f"POST /intent/feeds/exports/count did not say what the export of feed(s) "
                f"{', '.join(unknown)} would reserve, so the run cannot be held to "
                f"max_records_per_run ({cap:,}); nothing was created. Report this difference."
            )
            raise CreditError(msg)
        if cap is not None and total > cap:
            msg = (
                f"{spend}, more than max_records_per_run ({cap:,}) allows; nothing was "
                "created. Raise the cap, lower lookback_days or max_rows, or run fewer feeds."
            )
            raise CreditError(msg)
        remaining = self._lifecycle.credits_remaining()
        if remaining is None:
            self._logger.warning(
                "GET /organization/credits did not say what is left; the API itself refuses "
                "(402) an export the pool cannot pay for."
            )
        elif total > remaining:
            msg = (
                f"{spend}, but only {remaining:,} are left in the credit pool; nothing was "
                "created. Lower lookback_days or max_rows, or add credits."
            )
            raise CreditError(msg)
        if unknown:
            self._logger.warning(
                "POST /intent/feeds/exports/count did not say what the export of feed(s) %s "
                "would reserve; they are created without that check.",
                ", ".join(unknown),
            )

    def _report_plan(self) -> None:
        receipt = self._run.receipt
        for job in self.jobs:
            plan: dict[str, t.Any] = {"feed_id": job.feed_id}
            if job.window is not None:
                plan["start_date"] = job.window.start_date.isoformat()
                plan["end_date"] = job.window.end_date.isoformat()
            if job.origin is Origin.RESUMED or (job.summary is not None and job.window is None):
                plan["resume_export_id"] = job.export_id or (job.summary and job.summary.export_id)
                self._logger.info("Plan: would resume %s; nothing to spend.", job.describe())
            elif job.summary is not None:
                plan["reuse_export_id"] = job.summary.export_id
                self._logger.info(
                    "Plan: would reuse export %s of feed %s; nothing to spend.",
                    job.summary.export_id,
                    job.feed_id,
                )
            else:
                plan.update(total_rows=job.expected_rows, records_required=job.records_required)
                self._logger.info(
                    "Plan: would export feed %s for %s: %s rows, reserving %s records credits. "
                    "Nothing was created (plan_only).",
                    job.feed_id,
                    _window_text(job.window),
                    _number(job.expected_rows),
                    _number(job.records_required),
                )
            receipt.exports_planned.append(plan)

    # 3 and 4. Build, wait, read

    def records(self, read: Callable[[ExportJob], Iterator[Record]]) -> Iterator[Record]:
        """The records of every job, each export read by `read` as soon as it is ready."""
        if self.settings.plan_only:
            return
        self._next_poll = self._clock() + self._interval
        while True:
            if self._start_creations():
                # Before any wait: a run killed while these build resumes every one of them.
                self._checkpoint()
            ready = next((job for job in self.jobs if job.phase is Phase.READY), None)
            if ready is not None:
                if not self._before_reading(ready):
                    continue
                try:
                    # The records pass through here one by one: no extra generator between.
                    yield from read(ready)
                except (ExportError, ApiError, ContractError) as exc:
                    reason = str(exc).rstrip(".")
                    if ready.export_id and ready.export_id not in reason:  # names a request
                        reason = f"{ready.describe()}: {reason}"
                    ready.fail(reason)
                    continue
                self._delivered(ready)
                continue
            waiting = [job for job in self.jobs if job.phase in WAITING]
            planned = [job for job in self.jobs if job.phase is Phase.PLANNED]
            if not waiting and not planned:
                return
            self._pause(waiting, planned)
            now = self._clock()
            # At a deadline the export is asked once more: it may have progressed meanwhile.
            due = [job.clock.deadline(self._wait) for job in waiting if job.clock]
            if waiting and now >= min([self._next_poll, *due]):
                self._poll(waiting)

    @property
    def failures(self) -> list[str]:
        """Why each failed job did not deliver its feed."""
        return [job.error or job.describe() for job in self.jobs if job.phase is Phase.FAILED]

    def _start_creations(self) -> bool:
        """Create what the free slots allow; True when an export started to exist."""
        started = False
        limit = self.settings.max_concurrent_exports
        for job in self.jobs:
            if job.phase is not Phase.PLANNED:
                continue
            if job.after is not None and job.after.phase is not Phase.DELIVERED:
                if job.after.phase is Phase.FAILED:
                    job.fail(
                        f"the export of feed {job.feed_id} for {_window_text(job.window)} was "
                        "not started because the feed's earlier export did not finish"
                    )
                continue
            if sum(1 for other in self.jobs if other.phase in WAITING) >= limit:
                break
            if not job.may_create(self._clock()):
                continue
            started |= self._create(job)
        return started

    def _create(self, job: ExportJob) -> bool:
        """Create a job's export, unless an identical one appeared since the plan."""
        assert job.options is not None
        assert job.window is not None
        options, window = job.options, job.window
        if job.looks_before_create:
            appeared = self._lifecycle.find_reusable(
                options, window.start_date, window.end_date, exclude=job.reuse_exclusions()
            )
            if appeared is not None:
                job.start(appeared, Origin.REUSED, self._clock())
                self._logger.info(
                    "Reusing %s, which appeared since the run was planned, instead of "
                    "creating one.",
                    job.describe(),
                )
                self._run.receipt.exports_reused.append(appeared.export_id)
                job.observe(appeared, self._wait, self._clock())
                return True
        job.create_sent(self._clock())
        try:
            summary = self._lifecycle.create(options)
        except TransientApiError as exc:
            self._create_later(job, str(exc), exc.response)
            return False
        except ApiError as exc:
            if exc.status == HTTPStatus.CONFLICT:
                # The organization's limit of exports building at once
                # [assumed, docs/contactbased-api.md]: wait for a slot.
                self._create_later(job, str(exc), None, refused=True)
            else:
                job.fail(f"creating the export of feed {job.feed_id} was refused: {exc}")
            return False
        job.start(summary, Origin.CREATED, self._clock())
        reserved = summary.records_reserved
        reserved = job.records_required if reserved is None else reserved
        self._logger.info(
            "Created %s, reserving %s records credits.", job.describe(), _number(reserved)
        )
        self._run.receipt.exports_created.append(
            {
                "export_id": summary.export_id,
                "feed_id": job.feed_id,
                "records_reserved": reserved or 0,
            }
        )
        job.observe(summary, self._wait, self._clock())
        self._warn_of_overlap(job)
        return True

    def _create_later(
        self, job: ExportJob, problem: str, response: t.Any, *, refused: bool = False
    ) -> None:
        """Schedule another try of a create that failed.

        A refusal (409 at the organization's limit, 429, 503) created nothing: the create is
        tried again after the wait asked for. Any other failure may have created the export
        on the API (a timeout, a dropped answer, a garbled one): the next try first waits at
        least a request timeout, then looks for the export, so it is found, not paid twice.
        """
        now = self._clock()
        status = getattr(response, "status_code", None)
        limited = refused or status in {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.CONFLICT}
        refused = limited or status == HTTPStatus.SERVICE_UNAVAILABLE
        too_many = not limited and job.create_tries >= self._retry.max_tries
        too_long = job.create_elapsed(now) >= self._wait.timeout_seconds
        if too_many or too_long:
            job.fail(
                f"creating the export of feed {job.feed_id} failed {job.create_tries} "
                f"time(s): {problem}"
            )
            return
        wait = self._retry.jitter(self._retry.wait(job.create_tries, response))
        if not refused:
            wait = max(wait, float(self.settings.request_timeout_seconds))
        job.create_failed(now, wait, refused=refused)
        self._logger.warning(
            "Creating the export of feed %s did not work (%s); %s in %.1f s.",
            job.feed_id,
            problem,
            "trying again" if refused else "looking for it on the API, then trying again,",
            wait,
        )

    def _warn_of_overlap(self, job: ExportJob) -> None:
        """Say loudly when another run created the same export at the same time."""
        assert job.summary is not None
        assert job.options is not None
        others = self._lifecycle.others_like(
            job.summary, job.options, within_seconds=OVERLAP_SECONDS
        )
        if others:
            self._logger.warning(
                "Overlap: this run created export %s of feed %s while %s, identical, was "
                "created by another run within %g s; both are billed. Two runs share this "
                "feed: give each feed to exactly one shard.",
                job.export_id,
                job.feed_id,
                ", ".join(other.export_id for other in others),
                OVERLAP_SECONDS,
            )

    def _pause(self, waiting: list[ExportJob], planned: list[ExportJob]) -> None:
        """Sleep until the next poll, the next create try or the first deadline."""
        now = self._clock()
        moments = [job.next_create_at for job in planned if job.next_create_at > now]
        if waiting:
            moments.append(self._next_poll)
            moments.extend(job.clock.deadline(self._wait) for job in waiting if job.clock)
        if planned and not waiting and not moments:
            return
        until = min(moments) if moments else now
        if until > now:
            self._sleep(until - now)

    def _poll(self, waiting: list[ExportJob]) -> None:
        """One list request for every building export."""
        summaries = self._lifecycle.summaries([job.export_id or "" for job in waiting])
        now = self._clock()
        for job in waiting:
            summary = summaries.get(job.export_id or "")
            if summary is None:
                job.fail(f"{job.describe()} is no longer listed by the API")
                continue
            before = job.clock.progress if job.clock else None
            job.observe(summary, self._wait, now)
            if job.phase is Phase.BUILDING and job.clock and job.clock.progress != before:
                self._logger.info(
                    "%s is building: %.0f%% done.", job.describe(), (job.clock.progress or 0) * 100
                )
        self._interval = min(self._interval * 2, self._wait.max_interval_seconds)
        jittered = self._interval * (0.75 + random.random() / 2)  # noqa: S311 - not crypto
        self._next_poll = now + jittered

    def _before_reading(self, job: ExportJob) -> bool:
        """Whether to read a ready job: an export resumed while it built is checked now."""
        assert job.flight is not None
        assert job.summary is not None
        where = f"bookmarks.export_rows, feed {job.feed_id}, in_flight"
        if job.origin is Origin.RESUMED and (
            late := flight_misfits(job.flight, job.summary, where)
        ):
            job.fail(f"{job.describe()} does not fit the state: {'; '.join(late)}")
            return False
        if job.deliver_through_clamped is None:
            return True
        self._logger.warning(
            "%s ends before the window planned for it: it delivers through %s, not %s; "
            "the next run exports the days after.",
            job.describe(),
            job.flight.deliver_through,
            job.deliver_through_clamped,
        )
        for later in self.jobs:
            if later.after is job and later.phase is Phase.PLANNED:
                self.jobs.remove(later)
        return True

    def _delivered(self, job: ExportJob) -> None:
        job.read()
        job.deliver()
        self._run.export_delivered(job)
        self._checkpoint()


def _number(value: int | None) -> str:
    return "an unknown number of" if value is None else f"{value:,}"


def _window_text(window: Window | None) -> str:
    return "?" if window is None else f"{window.start_date}..{window.end_date}"
