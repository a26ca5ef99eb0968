"""The scheduler: build the planned exports at once, wait for all together, deliver each when ready.

Creates fill the free slots, and the state is written right after, so that a kill while the
exports build resumes every one of them; one list request a poll (`PollSchedule`) asks for
every building export; the stream's `Delivery` reads each as soon as it is ready. What stops
only a feed and what stops the run: docs/architecture.md, "The life of one export".
"""

from __future__ import annotations

import random
import time
import typing as t
from http import HTTPStatus

from tap_contactbased.errors import ApiError, ContractError, ExportError, TransientApiError
from tap_contactbased.job import WAITING, Phase
from tap_contactbased.lifecycle import number_text
from tap_contactbased.state import flight_misfits
from tap_contactbased.windows import window_text

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from tap_contactbased.job import ExportJob, WaitPolicy
    from tap_contactbased.lifecycle import ExportLifecycle
    from tap_contactbased.run import RunContext

Record = dict[str, t.Any]

# Another identical export created this close to ours was made by a concurrent run.
OVERLAP_SECONDS = 60.0


class Delivery(t.Protocol):
    """What the stream hands the scheduler: how a ready export is delivered, and the STATE."""

    def rows(self, job: ExportJob) -> Iterator[Record]:
        """A ready job's records from its first unconfirmed row, each chunk confirmed."""
        ...

    def checkpoint(self) -> None:
        """Write a STATE message now."""
        ...


class PollSchedule:
    """When to ask for the building exports again: a doubling interval, ±25 % jitter, a cap."""

    def __init__(self, wait: WaitPolicy, now: float) -> None:
        self._wait = wait
        self._interval = min(wait.first_interval_seconds, wait.max_interval_seconds)
        self.next_poll = now + self._interval

    def due(self, now: float, deadlines: Sequence[float]) -> bool:
        """Whether to poll at `now`: the next poll is due, or a deadline is reached.

        At a deadline the export is asked once more: it may have progressed meanwhile.
        """
        return now >= min([self.next_poll, *deadlines])

    def polled(self, now: float) -> None:
        """A poll was made at `now`: the next one comes a longer interval later."""
        self._interval = min(self._interval * 2, self._wait.max_interval_seconds)
        jittered = self._interval * (0.75 + random.random() / 2)  # noqa: S311 - not crypto
        self.next_poll = now + jittered


class Creator:
    """Creates a job's export once, or schedules the next try the way a failure allows."""

    def __init__(
        self,
        lifecycle: ExportLifecycle,
        run: RunContext,
        *,
        wait: WaitPolicy,
        logger: logging.Logger,
        clock: Callable[[], float],
    ) -> None:
        self._lifecycle = lifecycle
        self._run = run
        self._wait = wait
        self._logger = logger
        self._clock = clock

    def create(self, job: ExportJob) -> bool:
        """Create a job's export, unless an identical one appeared since the plan.

        True when the export now exists (created or found).
        """
        assert job.options is not None
        assert job.window is not None
        options, window = job.options, job.window
        if job.looks_before_create:
            appeared = self._lifecycle.find_reusable(
                options, window.start_date, window.end_date, exclude=job.reuse_exclusions()
            )
            if appeared is not None:
                job.start(appeared, self._clock())
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
            self._later(job, str(exc), exc.response)
            return False
        except ApiError as exc:
            if exc.status == HTTPStatus.CONFLICT:
                # The organization's limit of exports building at once
                # [assumed, docs/contactbased-api.md]: wait for a slot.
                self._later(job, str(exc), None, refused=True)
            else:
                job.fail(f"creating the export of feed {job.feed_id} was refused: {exc}")
            return False
        job.start(summary, self._clock())
        reserved = summary.records_reserved
        reserved = job.records_required if reserved is None else reserved
        self._logger.info(
            "Created %s, reserving %s records credits.", job.describe(), number_text(reserved)
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

    def _later(
        self, job: ExportJob, problem: str, response: t.Any, *, refused: bool = False
    ) -> None:
        """Schedule another try of a create that failed.

        A refusal (409 at the organization's limit, 429, 503) created nothing: the create is
        tried again after the wait asked for. Any other failure may have created the export
        on the API (a timeout, a dropped answer, a garbled one): the next try first waits at
        least a request timeout, then looks for the export, so it is found, not paid twice.
        """
        now, retry = self._clock(), self._run.client.policy
        status = getattr(response, "status_code", None)
        limited = refused or status in {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.CONFLICT}
        refused = limited or status == HTTPStatus.SERVICE_UNAVAILABLE
        too_many = not limited and job.create_tries >= retry.max_tries
        too_long = job.create_elapsed(now) >= self._wait.timeout_seconds
        if too_many or too_long:
            job.fail(
                f"creating the export of feed {job.feed_id} failed {job.create_tries} "
                f"time(s): {problem}"
            )
            return
        wait = retry.jitter(retry.wait(job.create_tries, response))
        if not refused:
            wait = max(wait, float(self._run.settings.request_timeout_seconds))
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


class Scheduler:
    """Runs the planned jobs to delivery: creates in free slots, polls, reads when ready."""

    def __init__(
        self,
        jobs: Iterable[ExportJob],
        lifecycle: ExportLifecycle,
        run: RunContext,
        delivery: Delivery,
        *,
        wait: WaitPolicy,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._jobs = list(jobs)
        self._lifecycle = lifecycle
        self._run = run
        self._delivery = delivery
        self._wait = wait
        self._creator = Creator(lifecycle, run, wait=wait, logger=logger, clock=clock)
        self._logger = logger
        self._clock = clock
        self._sleep = sleep

    def run(self) -> Iterator[Record]:
        """The records of every job, each export read as soon as it is ready."""
        polls = PollSchedule(self._wait, self._clock())
        while True:
            if self._start_creations():
                # Before any wait: a run killed while these build resumes every one of them.
                self._delivery.checkpoint()
            ready = next((job for job in self._jobs if job.phase is Phase.READY), None)
            if ready is not None:
                if not self._before_reading(ready):
                    continue
                try:
                    # The records pass through here one by one: no extra generator between.
                    yield from self._delivery.rows(ready)
                except (ExportError, ApiError, ContractError) as exc:
                    reason = str(exc).rstrip(".")
                    if ready.export_id and ready.export_id not in reason:  # names a request
                        reason = f"{ready.describe()}: {reason}"
                    ready.fail(reason)
                    continue
                self._delivered(ready)
                continue
            waiting = [job for job in self._jobs if job.phase in WAITING]
            planned = [job for job in self._jobs if job.phase is Phase.PLANNED]
            if not waiting and not planned:
                return
            self._pause(waiting, planned, polls)
            deadlines = [job.clock.deadline(self._wait) for job in waiting if job.clock]
            if waiting and polls.due(self._clock(), deadlines):
                self._poll(waiting, polls)

    def _start_creations(self) -> bool:
        """Create what the free slots allow; True when an export started to exist."""
        started = False
        for job in self._jobs:
            if job.phase is not Phase.PLANNED:
                continue
            if job.after is not None and job.after.phase is not Phase.DELIVERED:
                if job.after.phase is Phase.FAILED:
                    job.fail(
                        f"the export of feed {job.feed_id} for {window_text(job.window)} was "
                        "not started because the feed's earlier export did not finish"
                    )
                continue
            building = sum(1 for other in self._jobs if other.phase in WAITING)
            if building >= self._run.settings.max_concurrent_exports:
                break
            if not job.may_create(self._clock()):
                continue
            started |= self._creator.create(job)
        return started

    def _pause(
        self, waiting: list[ExportJob], planned: list[ExportJob], polls: PollSchedule
    ) -> None:
        """Sleep until the next poll, the next create try or the first deadline."""
        now = self._clock()
        moments = [job.next_create_at for job in planned if job.next_create_at > now]
        if waiting:
            moments.append(polls.next_poll)
            moments.extend(job.clock.deadline(self._wait) for job in waiting if job.clock)
        if planned and not waiting and not moments:
            return
        until = min(moments) if moments else now
        if until > now:
            self._sleep(until - now)

    def _poll(self, waiting: list[ExportJob], polls: PollSchedule) -> None:
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
        polls.polled(now)

    def _before_reading(self, job: ExportJob) -> bool:
        """Whether to read a ready job: an export resumed while it built is checked now."""
        assert job.flight is not None
        assert job.summary is not None
        where = f"bookmarks.export_rows, feed {job.feed_id}, in_flight"
        if job.from_state and (late := flight_misfits(job.flight, job.summary, where)):
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
        for later in list(self._jobs):
            if later.after is job and later.phase is Phase.PLANNED:
                self._jobs.remove(later)
        return True

    def _delivered(self, job: ExportJob) -> None:
        job.read()
        job.deliver()
        self._run.export_delivered(job)
        self._delivery.checkpoint()
