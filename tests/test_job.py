"""The export job's state machine and the run's waiting, on an injected clock: no real waits."""

from __future__ import annotations

import datetime
import logging
import typing as t

import pytest

from tap_contactbased.errors import ExportError, StateError, TransientApiError
from tap_contactbased.job import ExportJob, Phase, WaitPolicy
from tap_contactbased.run import RunContext
from tap_contactbased.scheduler import Creator, Scheduler
from tap_contactbased.settings import Settings
from tap_contactbased.state import InFlight
from tap_contactbased.summary import ExportOptions, ExportSummary
from tap_contactbased.windows import Window

POLICY = WaitPolicy(timeout_seconds=100, stall_timeout_seconds=30, max_interval_seconds=8)
WINDOW = Window(
    7, datetime.date(2026, 11, 21), datetime.date(2026, 11, 27), datetime.date(2026, 11, 26)
)


def summary(
    status: str = "building", progress: float | None = 0.0, **fields: t.Any
) -> ExportSummary:
    raw: dict[str, t.Any] = {
        "export_id": "exp_1",
        "feed_id": "feed",
        "status": status,
        "start_date": "2026-11-21",
        "end_date": "2026-11-27",
        **fields,
    }
    if progress is not None:
        raw["build_progress"] = progress
    return ExportSummary(raw)


def phase(job: ExportJob) -> Phase:
    """The job's phase, read afresh (each transition may change it)."""
    return job.phase


def started_job(state: dict[str, t.Any] | None = None, at: float = 0.0) -> ExportJob:
    job = ExportJob("feed", {} if state is None else state, window=WINDOW)
    job.start(summary(), at)
    return job


def test_a_building_export_becomes_ready() -> None:
    state: dict[str, t.Any] = {}
    job = started_job(state)
    assert state["in_flight"]["export_id"] == "exp_1"  # in the state before any wait

    job.observe(summary(progress=0.5), POLICY, 10)
    assert phase(job) is Phase.BUILDING
    job.observe(summary("ready", 1.0), POLICY, 20)

    assert phase(job) is Phase.READY
    assert job.read_from_start


@pytest.mark.parametrize("spelling", ["READY", " ready ", "Ready"])
def test_a_status_is_read_without_regard_to_case_and_spaces(spelling: str) -> None:
    job = started_job()

    job.observe(summary(spelling, 1.0), POLICY, 1)

    assert phase(job) is Phase.READY


def test_a_failed_build_fails_the_job_with_the_apis_reason() -> None:
    job = started_job()

    job.observe(summary("failed", 0.5, build_error="upstream timed out"), POLICY, 5)

    assert phase(job) is Phase.FAILED
    assert job.error is not None
    assert "failed to build: upstream timed out" in job.error


def test_an_unknown_status_fails_the_job_rather_than_guess() -> None:
    job = started_job()

    job.observe(summary("archived"), POLICY, 5)

    assert phase(job) is Phase.FAILED
    assert "status 'archived'" in (job.error or "")


def test_the_overall_deadline_ends_a_wait_that_still_progresses() -> None:
    job = started_job()
    for now in range(0, 100, 10):
        job.observe(summary(progress=now / 200), POLICY, now)
        assert phase(job) is Phase.BUILDING

    job.observe(summary(progress=0.6), POLICY, 100)

    assert phase(job) is Phase.FAILED
    assert "was not ready after 100 s (export_timeout_seconds), at 60%" in (job.error or "")


def test_the_stall_deadline_ends_a_wait_without_progress() -> None:
    job = started_job()
    job.observe(summary(progress=0.4), POLICY, 10)
    job.observe(summary(progress=0.4), POLICY, 39)
    assert phase(job) is Phase.BUILDING

    job.observe(summary(progress=0.4), POLICY, 40)

    assert phase(job) is Phase.FAILED
    assert "made no progress for 30 s (export_stall_timeout_seconds)" in (job.error or "")


def test_without_build_progress_only_the_overall_deadline_applies() -> None:
    job = started_job()
    job.observe(summary(progress=None), POLICY, 99)
    assert phase(job) is Phase.BUILDING
    assert job.clock is not None
    assert job.clock.deadline(POLICY) == 100

    job.observe(summary(progress=None), POLICY, 100)

    assert phase(job) is Phase.FAILED


def test_delivery_moves_the_bookmark_and_forgets_the_export() -> None:
    state: dict[str, t.Any] = {}
    job = started_job(state)
    job.observe(summary("ready", 1.0), POLICY, 1)
    job.confirm(120)
    assert state["in_flight"]["rows_done"] == 120

    job.read()
    job.deliver()

    assert state == {"delivered_through": "2026-11-26", "last_export_id": "exp_1"}


def test_an_export_that_ends_before_its_planned_window_delivers_through_the_day_before() -> None:
    state: dict[str, t.Any] = {}
    job = started_job(state)

    job.observe(summary("ready", 1.0, end_date="2026-11-26"), POLICY, 1)

    assert job.deliver_through_clamped == "2026-11-26"
    assert state["in_flight"]["deliver_through"] == "2026-11-25"


@pytest.mark.parametrize(
    ("move", "phase"),
    [("read", Phase.BUILDING), ("deliver", Phase.READY), ("deliver", Phase.BUILDING)],
)
def test_transitions_out_of_order_are_refused(move: str, phase: Phase) -> None:
    job = started_job()
    job.phase = phase

    with pytest.raises(RuntimeError, match="cannot go from"):
        getattr(job, move)()


def test_an_in_flight_record_written_before_the_newer_fields_still_reads() -> None:
    old = {
        "export_id": "exp_1",
        "start_date": "2026-11-21",
        "end_date": "2026-11-27",
        "deliver_through": "2026-11-26",
        "rows_done": 1000,
    }

    flight = InFlight.from_state(old, "in_flight")

    assert (flight.rows_done, flight.expected_rows, flight.page_size) == (1000, None, None)
    assert flight.to_state() == old


@pytest.mark.parametrize(
    ("field", "value"),
    [("rows_done", -1), ("rows_done", "12"), ("expected_rows", True), ("end_date", "soon")],
)
def test_an_in_flight_record_this_tap_could_not_have_written_is_refused(
    field: str, value: t.Any
) -> None:
    record = {"export_id": "exp_1", "rows_done": 0, field: value}

    with pytest.raises(StateError, match=f"in_flight.{field}"):
        InFlight.from_state(record, "in_flight")


class VirtualTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedExports:
    """The lifecycle's `summaries`, answering from a script of (time, summary)."""

    def __init__(self, time: VirtualTime, script: list[tuple[float, ExportSummary]]) -> None:
        self.time = time
        self.script = script
        self.polls: list[float] = []

    def summaries(self, export_ids: t.Collection[str]) -> dict[str, ExportSummary]:
        self.polls.append(self.time.now)
        current = [s for at, s in self.script if at <= self.time.now][-1]
        return {current.export_id: current}


class NotedDelivery:
    """A delivery that notes each job it reads, giving one record of each."""

    def __init__(self) -> None:
        self.read: list[ExportJob] = []

    def rows(self, job: ExportJob) -> t.Iterator[dict[str, t.Any]]:
        self.read.append(job)
        yield {}

    def checkpoint(self) -> None:
        pass


def run_scheduler(
    jobs: tuple[ExportJob, ...],
    exports: object,
    time: VirtualTime,
    feed_ids: list[str],
    delivery: NotedDelivery,
) -> None:
    """Run a scheduler over `jobs` to its end on virtual time, `exports` standing for the API."""
    settings = Settings.from_config({"api_key": "k", "feed_ids": feed_ids})
    scheduler = Scheduler(
        jobs,
        t.cast(t.Any, exports),
        RunContext(settings, enrichment_state=dict, enrichment_selected=lambda: False),
        delivery,
        wait=POLICY,
        logger=logging.getLogger("test"),
        clock=time.clock,
        sleep=time.sleep,
    )
    list(scheduler.run())


def wait_for(
    script: list[tuple[float, ExportSummary]], delivery: NotedDelivery | None = None
) -> tuple[ExportJob, VirtualTime, ScriptedExports]:
    time = VirtualTime()
    exports = ScriptedExports(time, script)
    job = started_job(at=0.0)
    delivery = delivery or NotedDelivery()
    run_scheduler((job,), exports, time, ["feed"], delivery)
    assert delivery.read in ([], [job])
    return job, time, exports


def test_polls_grow_to_the_cap_and_the_export_is_read_when_ready() -> None:
    job, time, exports = wait_for(
        [
            (0, summary(progress=0.1)),
            (20, summary(progress=0.3)),
            (40, summary(progress=0.6)),
            (50, summary("ready", 1.0)),
        ]
    )

    assert phase(job) is Phase.DELIVERED
    gaps = [b - a for a, b in zip([0.0, *exports.polls], exports.polls, strict=False)]
    assert all(0.75 * 2**i <= gap <= 1.25 * 2**i for i, gap in enumerate(gaps[:3]))
    assert all(gap <= 1.25 * POLICY.max_interval_seconds for gap in gaps)
    assert 50 <= time.now <= 50 + 1.25 * POLICY.max_interval_seconds


class FailingDelivery(NotedDelivery):
    """A delivery whose reading fails at once with `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def rows(self, job: ExportJob) -> t.Iterator[dict[str, t.Any]]:
        self.read.append(job)
        raise self.error


@pytest.mark.parametrize(
    ("message", "error"),
    [
        pytest.param(
            "export exp_1 has 3 rows, not 5.",
            "export exp_1 has 3 rows, not 5",
            id="naming the export",
        ),
        pytest.param(
            "POST /intent/feeds/exports/page answered 404.",
            "export exp_1 of feed feed (2026-11-21..2026-11-27): "
            "POST /intent/feeds/exports/page answered 404",
            id="naming a request",
        ),
    ],
)
def test_a_failed_read_fails_the_job_naming_its_export_once(message: str, error: str) -> None:
    job, _, _ = wait_for([(0, summary("ready", 1.0))], FailingDelivery(ExportError(message)))

    assert phase(job) is Phase.FAILED
    assert job.error == error


def test_a_building_exports_progress_is_logged_once_per_change_and_not_once_ready(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        job, _, exports = wait_for(
            [
                (0, summary(progress=0.25)),
                (20, summary(progress=0.9)),
                (40, summary("ready", 1.0)),
            ]
        )

    assert phase(job) is Phase.DELIVERED
    assert len(exports.polls) > 3  # the same progress was seen at several polls
    building = [r.getMessage() for r in caplog.records if "is building" in r.getMessage()]
    assert building == [
        "export exp_1 of feed feed (2026-11-21..2026-11-27) is building: 25% done.",
        "export exp_1 of feed feed (2026-11-21..2026-11-27) is building: 90% done.",
    ]


def test_a_stalled_export_is_given_up_at_its_deadline_not_after_a_whole_interval() -> None:
    job, time, exports = wait_for([(0, summary(progress=0.4))])

    assert phase(job) is Phase.FAILED
    assert "made no progress for 30 s" in (job.error or "")
    # Progress was first seen at the first poll; the wait ends 30 s later to the dot.
    assert time.now == pytest.approx(exports.polls[0] + POLICY.stall_timeout_seconds)
    assert exports.polls[-1] == time.now


def test_a_failed_create_waits_and_looks_for_the_export_first_unless_refused() -> None:
    job = ExportJob("feed", {}, window=WINDOW)
    assert (job.may_create(0.0), job.looks_before_create, job.create_tries) == (True, True, 0)

    job.create_sent(10.0)
    job.create_failed(10.0, 30.0, refused=False)  # a timeout: the export may exist
    job.create_sent(40.0)

    assert job.create_tries == 2
    assert job.create_elapsed(45.0) == 35.0  # from the first create sent, not the last
    assert job.next_create_at == 40.0
    looked = job.looks_before_create
    job.create_failed(40.0, 5.0, refused=True)  # a 409: nothing was created
    assert (looked, job.looks_before_create) == (True, False)
    assert (job.may_create(44.9), job.may_create(45.0)) == (False, True)


class TimedOutCreates:
    """The export operations of an API whose creates time out and on which nothing appears."""

    def __init__(self) -> None:
        self.creates = 0

    def find_reusable(self, *_: t.Any, **__: t.Any) -> None:
        return None

    def create(self, options: ExportOptions) -> ExportSummary:
        self.creates += 1
        raise TransientApiError("POST /intent/feeds/exports timed out")


def test_a_create_failing_again_and_again_is_given_up_at_the_wait_timeout_to_the_second() -> None:
    time = VirtualTime()
    lifecycle = TimedOutCreates()
    config = {"api_key": "k", "feed_ids": ["feed"], "request_timeout_seconds": 1}
    settings = Settings.from_config(config)
    creator = Creator(
        t.cast(t.Any, lifecycle),
        RunContext(settings, enrichment_state=dict, enrichment_selected=lambda: False),
        wait=POLICY,
        logger=logging.getLogger("test"),
        clock=time.clock,
    )
    job = ExportJob("feed", {}, window=WINDOW, options=ExportOptions("feed", 7, 1000))

    for moment in (0.0, POLICY.timeout_seconds - 0.5):
        time.now = moment
        assert creator.create(job) is False
        assert phase(job) is not Phase.FAILED  # tried again later
    time.now = POLICY.timeout_seconds  # the wait's timeout from the first create sent
    creator.create(job)

    assert lifecycle.creates == 3  # not the tries: the time ended it
    assert phase(job) is Phase.FAILED
    assert "creating the export of feed feed failed 3 time(s)" in (job.error or "")


def test_a_job_never_reuses_the_feeds_last_export_nor_its_earlier_jobs() -> None:
    earlier = started_job({"last_export_id": "exp_0"})
    job = ExportJob("feed", earlier.state, window=WINDOW, after=earlier)

    assert job.reuse_exclusions() == {"exp_0", "exp_1"}
    assert ExportJob("feed", {}, window=WINDOW).reuse_exclusions() == set()


def test_a_dropped_flight_leaves_the_feed_to_a_new_export() -> None:
    flight = InFlight("exp_1", "2026-11-21", "2026-11-27", "2026-11-26", rows_done=10)
    state: dict[str, t.Any] = {"in_flight": flight.to_state(), "delivered_through": "2026-11-20"}
    job = ExportJob.resumed("feed", state, flight)

    job.drop_flight()

    assert state == {"delivered_through": "2026-11-20"}
    assert (job.export_id, job.next_row) == (None, 1)


class ExportsMadeReady:
    """Export operations that create exports ready at once; `exp_1` is ready from `ready_at`."""

    def __init__(self, time: VirtualTime, ready_at: float) -> None:
        self.time = time
        self.ready_at = ready_at
        self.created: list[tuple[str, float]] = []  # (feed, when)

    def find_reusable(self, *_: t.Any, **__: t.Any) -> None:
        return None

    def others_like(self, *_: t.Any, **__: t.Any) -> list[ExportSummary]:
        return []

    def create(self, options: ExportOptions) -> ExportSummary:
        self.created.append((options.feed_id, self.time.now))
        return summary("ready", 1.0, export_id=f"exp_{len(self.created) + 1}")

    def summaries(self, export_ids: t.Collection[str]) -> dict[str, ExportSummary]:
        ready = self.time.now >= self.ready_at
        exp_1 = summary("ready", 1.0) if ready else summary(progress=0.5)
        return {"exp_1": exp_1}


def test_a_job_waiting_for_its_feeds_earlier_export_holds_back_no_other_feed() -> None:
    time = VirtualTime()
    exports = ExportsMadeReady(time, ready_at=20.0)
    first = started_job(at=0.0)  # exp_1, building until 20 s
    second = ExportJob(
        "feed", {}, window=WINDOW, options=ExportOptions("feed", 7, 1000), after=first
    )
    other = ExportJob("other", {}, window=WINDOW, options=ExportOptions("other", 7, 1000))
    delivery = NotedDelivery()
    run_scheduler((first, second, other), exports, time, ["feed", "other"], delivery)

    assert delivery.read == [other, first, second]
    (other_created, second_created) = sorted(exports.created, key=lambda made: made[1])
    assert other_created == ("other", 0.0)  # at once, next to the feed's earlier export
    assert second_created[0] == "feed"
    assert second_created[1] >= 20.0  # only once the feed's earlier export was delivered


class CreateFailingOnce(ExportsMadeReady):
    """The first create times out; the next makes `exp_1`, building until `ready_at`."""

    def __init__(self, time: VirtualTime, ready_at: float) -> None:
        super().__init__(time, ready_at)
        self.asked: list[list[str]] = []

    def create(self, options: ExportOptions) -> ExportSummary:
        self.created.append((options.feed_id, self.time.now))
        if len(self.created) == 1:
            raise TransientApiError("POST /intent/feeds/exports timed out")
        return summary(progress=0.1)

    def summaries(self, export_ids: t.Collection[str]) -> dict[str, ExportSummary]:
        self.asked.append(list(export_ids))
        return super().summaries(export_ids)


def test_nothing_is_polled_while_no_export_builds() -> None:
    time = SpinGuardedTime()  # and the wait for the next create try is slept, not spun
    exports = CreateFailingOnce(time, ready_at=40.0)
    job = ExportJob("feed", {}, window=WINDOW, options=ExportOptions("feed", 7, 1000))
    delivery = NotedDelivery()
    run_scheduler((job,), exports, time, ["feed"], delivery)

    assert delivery.read == [job]
    assert [feed for feed, _ in exports.created] == ["feed", "feed"]  # tried again, made
    assert exports.asked  # polled while it built ...
    assert all(ids == ["exp_1"] for ids in exports.asked)  # ... and only then


class OneExportGone:
    """The list answers for `exp_2` only, ready; `exp_1` is no longer listed."""

    def __init__(self) -> None:
        self.polls = 0

    def summaries(self, export_ids: t.Collection[str]) -> dict[str, ExportSummary]:
        self.polls += 1
        return {"exp_2": summary("ready", 1.0, export_id="exp_2", feed_id="other")}


def test_an_export_no_longer_listed_fails_its_job_and_the_others_are_still_observed() -> None:
    time = VirtualTime()
    exports = OneExportGone()
    gone = started_job(at=0.0)  # exp_1
    other = ExportJob("other", {}, window=WINDOW)
    other.start(summary(export_id="exp_2", feed_id="other"), 0.0)
    delivery = NotedDelivery()
    run_scheduler((gone, other), exports, time, ["feed", "other"], delivery)

    assert phase(gone) is Phase.FAILED
    assert (
        gone.error
        == "export exp_1 of feed feed (2026-11-21..2026-11-27) is no longer listed by the API"
    )
    assert delivery.read == [other]
    assert exports.polls == 1  # the poll that found one gone observed the other too


class ClampedExport(ExportsMadeReady):
    """`exp_1` is ready, but ends a day before its planned window."""

    def summaries(self, export_ids: t.Collection[str]) -> dict[str, ExportSummary]:
        return {"exp_1": summary("ready", 1.0, end_date="2026-11-26")}


def test_an_export_ending_early_drops_only_its_own_feeds_next_window() -> None:
    time = VirtualTime()
    exports = ClampedExport(time, ready_at=0.0)
    first = started_job(at=0.0)
    next_window = ExportJob(
        "feed", {}, window=WINDOW, options=ExportOptions("feed", 7, 1000), after=first
    )
    other = ExportJob("other", {}, window=WINDOW, options=ExportOptions("other", 7, 1000))
    other.create_failed(0.0, 100.0, refused=True)  # still planned when exp_1 is read
    delivery = NotedDelivery()
    run_scheduler((first, next_window, other), exports, time, ["feed", "other"], delivery)

    assert first.deliver_through_clamped == "2026-11-26"
    assert delivery.read == [first, other]  # the next window of feed waits for the next run
    assert exports.created == [("other", 100.0)]


class SpinGuardedTime(VirtualTime):
    """Virtual time that fails a scheduler reading the clock over and over without sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.reads_since_sleep = 0

    def clock(self) -> float:
        self.reads_since_sleep += 1
        assert self.reads_since_sleep < 1000, "the scheduler spins without ever sleeping"
        return self.now

    def sleep(self, seconds: float) -> None:
        self.reads_since_sleep = 0
        super().sleep(seconds)


def test_a_job_held_back_by_its_feeds_earlier_export_does_not_make_the_scheduler_spin() -> None:
    time = SpinGuardedTime()
    exports = ScriptedExports(time, [(0, summary(progress=0.4))])  # stalls, then fails
    first = started_job(at=0.0)
    second = ExportJob("feed", {}, window=WINDOW, after=first)
    run_scheduler((first, second), exports, time, ["feed"], NotedDelivery())

    # It slept from poll to poll until the first export's stall deadline ...
    assert time.now == pytest.approx(exports.polls[0] + POLICY.stall_timeout_seconds)
    assert sum(time.sleeps) == time.now
    # ... and the second job, which waited on it all along, was never started.
    assert (phase(first), phase(second)) == (Phase.FAILED, Phase.FAILED)
    assert "because the feed's earlier export did not finish" in (second.error or "")
