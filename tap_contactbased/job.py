"""The export job: one feed's export from plan to delivery, as an explicit state machine.

The machine is `NEXT_PHASES` (docs/architecture.md, "The life of one export"). The job owns
its feed's entry in the state: it records the export in flight as soon as it exists, the
rows confirmed while it is read, and the bookmark when it is delivered. A failed job leaves
its export in the state, so that the next run resumes it (stalled, timed out, unreadable)
or replaces it (failed on the API).
"""

from __future__ import annotations

import datetime
import enum
import typing as t
from dataclasses import dataclass

from tap_contactbased.redaction import api_text
from tap_contactbased.state import InFlight, day_or_none
from tap_contactbased.summary import ExportStatus
from tap_contactbased.values import date_or_none

if t.TYPE_CHECKING:
    from collections.abc import MutableMapping

    from tap_contactbased.settings import Settings
    from tap_contactbased.summary import ExportOptions, ExportSummary
    from tap_contactbased.windows import Window


class Phase(enum.Enum):
    """Where a job stands."""

    PLANNED = "planned"
    CREATED = "created"
    BUILDING = "building"
    READY = "ready"
    READ = "read"
    DELIVERED = "delivered"
    FAILED = "failed"


NEXT_PHASES: dict[Phase, frozenset[Phase]] = {
    Phase.PLANNED: frozenset({Phase.CREATED, Phase.FAILED}),
    Phase.CREATED: frozenset({Phase.BUILDING, Phase.READY, Phase.FAILED}),
    Phase.BUILDING: frozenset({Phase.BUILDING, Phase.READY, Phase.FAILED}),
    Phase.READY: frozenset({Phase.READ, Phase.FAILED}),
    Phase.READ: frozenset({Phase.DELIVERED, Phase.FAILED}),
    Phase.DELIVERED: frozenset(),
    Phase.FAILED: frozenset(),
}
WAITING = frozenset({Phase.CREATED, Phase.BUILDING})


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how often to poll building exports."""

    timeout_seconds: float
    stall_timeout_seconds: float
    max_interval_seconds: float
    first_interval_seconds: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WaitPolicy:
        """The waits of a run, from its settings (tests shorten them here)."""
        return cls(
            timeout_seconds=settings.export_timeout_seconds,
            stall_timeout_seconds=settings.export_stall_timeout_seconds,
            max_interval_seconds=settings.poll_interval_max_seconds,
        )


class BuildClock:
    """When a job started waiting in this run and when its build last progressed."""

    def __init__(self, now: float) -> None:
        """Start both deadlines at `now`."""
        self.started = now
        self.last_change = now
        self.progress: float | None = None  # the highest seen; None while none was reported

    def observe(self, progress: float | None, now: float) -> None:
        """Note the reported progress; a rise restarts the stall deadline."""
        if progress is not None and (self.progress is None or progress > self.progress):
            self.progress, self.last_change = progress, now

    def deadline(self, policy: WaitPolicy) -> float:
        """The moment at which the wait is over unless the build progresses before."""
        overall = self.started + policy.timeout_seconds
        if self.progress is None:
            # Without build_progress [assumed, docs/contactbased-api.md] no progress can be
            # seen: only the overall deadline applies, or a healthy build would count as
            # stalled.
            return overall
        return min(overall, self.last_change + policy.stall_timeout_seconds)

    def overdue(self, policy: WaitPolicy, now: float) -> str | None:
        """Why the wait is over, or None while it may go on."""
        done = f"at {self.progress:.0%}" if self.progress is not None else "progress unknown"
        if now - self.started >= policy.timeout_seconds:
            return (
                f"was not ready after {policy.timeout_seconds:g} s (export_timeout_seconds), {done}"
            )
        if self.progress is not None and now - self.last_change >= policy.stall_timeout_seconds:
            return (
                f"made no progress for {policy.stall_timeout_seconds:g} s "
                f"(export_stall_timeout_seconds), stuck {done}"
            )
        return None


def start_bookmark(state: MutableMapping[str, t.Any], day: str) -> None:
    """Start a feed's bookmark at `day`: a new feed with no complete day to export yet."""
    state["delivered_through"] = day


class ExportJob:
    """One feed's export in one run, and the feed's entry in the state.

    The job is the only writer of its fields and of that entry: the run tells it what
    happened (`counted`, `create_sent`, `start`, `observe`, ...) and reads its views.
    """

    def __init__(
        self,
        feed_id: str,
        state: MutableMapping[str, t.Any],
        *,
        window: Window | None = None,
        options: ExportOptions | None = None,
        after: ExportJob | None = None,
    ) -> None:
        """A planned job; `after` is a job of the same feed that must be delivered first."""
        self.feed_id = feed_id
        self.state = state
        self.window = window
        self.options = options
        self.records_required: int | None = None
        self.expected_rows: int | None = None  # the count before the create, then in flight
        self.after = after
        self.phase = Phase.PLANNED
        self.from_state = False  # its export was named in the state by an earlier run
        self.summary: ExportSummary | None = None
        self.flight: InFlight | None = None
        self.clock: BuildClock | None = None
        self.error: str | None = None  # why it failed: set by `fail` alone, with the phase
        self.create_tries = 0  # creates sent so far
        self._first_create_sent: float | None = None
        self.looks_before_create = True  # an identical export may exist by now
        self.next_create_at = 0.0  # when the next create may be sent (0 before any failed)
        self.deliver_through_clamped: str | None = None
        self.read_from_start = False  # every row of the export is read in this run

    @classmethod
    def resumed(
        cls, feed_id: str, state: MutableMapping[str, t.Any], flight: InFlight
    ) -> ExportJob:
        """A job for the export an earlier run left in flight; its summary comes later."""
        job = cls(feed_id, state)
        job.flight = flight
        job.from_state = True
        return job

    # Planning and creating

    def counted(self, total_rows: int | None, records_required: int | None) -> None:
        """The count before the create: the rows expected and the records credits reserved."""
        self.expected_rows, self.records_required = total_rows, records_required

    def drop_flight(self) -> None:
        """Forget the export an earlier run left in flight: the API lost it or it failed."""
        self.flight = None
        del self.state["in_flight"]

    def reuse_exclusions(self) -> set[str]:
        """Exports never reused for this job: the feed's last delivered and its earlier job's."""
        last = self.state.get("last_export_id")
        exclude = {last} if last else set()
        if self.after is not None and self.after.export_id:
            exclude.add(self.after.export_id)
        return exclude

    def create_sent(self, now: float) -> None:
        """A create of this job's export is sent at `now`."""
        self.create_tries += 1
        if self._first_create_sent is None:
            self._first_create_sent = now

    def create_failed(self, now: float, wait: float, *, refused: bool) -> None:
        """The create failed: try again after `wait` s, looking first unless it was refused.

        A refusal created nothing; any other failure may have created the export.
        """
        self.looks_before_create = not refused
        self.next_create_at = now + wait

    def may_create(self, now: float) -> bool:
        """Whether the wait after a failed create is over at `now`."""
        return now >= self.next_create_at

    def create_elapsed(self, now: float) -> float:
        """Seconds since the first create was sent (0 before)."""
        first = self._first_create_sent
        return 0.0 if first is None else now - first

    # Transitions

    def _move(self, phase: Phase) -> None:
        if phase not in NEXT_PHASES[self.phase]:
            msg = f"{self.describe()}: cannot go from {self.phase.value} to {phase.value}"
            raise RuntimeError(msg)
        self.phase = phase

    def start(self, summary: ExportSummary, now: float) -> None:
        """The export exists (created, reused or resumed): record it in flight and wait."""
        self._move(Phase.CREATED)
        self.summary = summary
        if self.flight is None:
            assert self.window is not None
            through = self.window.deliver_through
            # The export's own window where it says it: a create after midnight (UTC) on the
            # API ends a day later than planned, and a resume checks the window it names.
            self.flight = InFlight(
                export_id=summary.export_id,
                start_date=day_or_none(summary.start_date) or self.window.start_date.isoformat(),
                end_date=day_or_none(summary.end_date) or self.window.end_date.isoformat(),
                deliver_through=None if through is None else through.isoformat(),
                expected_rows=self.expected_rows,
                page_size=self.options.page_size if self.options else None,
            )
        self.state["in_flight"] = self.flight.to_state()
        self.clock = BuildClock(now)

    def observe(self, summary: ExportSummary, policy: WaitPolicy, now: float) -> None:
        """Take the export's current summary: building, ready, or failed with a reason."""
        assert self.clock is not None
        self.summary = summary
        status = summary.status
        if status is ExportStatus.READY:
            self._move(Phase.READY)
            self.read_from_start = self.next_row == 1
            self._clamp_delivery(summary)
        elif status is ExportStatus.FAILED:
            reason = api_text(summary.raw.get("build_error")) or "no reason given"
            self.fail(f"{self.describe()} failed to build: {reason}")
        elif status is None:
            self.fail(
                f"{self.describe()} reports status '{api_text(summary.status_text)}'; the tap "
                "knows only building, ready and failed, so it stops rather than guess"
            )
        else:
            self._move(Phase.BUILDING)
            self.clock.observe(summary.progress, now)
            if (late := self.clock.overdue(policy, now)) is not None:
                self.fail(f"{self.describe()} {late}. The next run resumes the same export")

    def _clamp_delivery(self, summary: ExportSummary) -> None:
        """Never deliver the export's own last day: it is today on the API, not yet over.

        The window was planned with the API's today as the search reported it; if the
        export says it ends earlier, the days delivered end the day before it.
        """
        assert self.flight is not None
        through, end = self.flight.deliver_through, date_or_none(summary.end_date)
        if through is None or end is None:
            return
        last_complete = (end - datetime.timedelta(days=1)).isoformat()
        if through > last_complete:
            self.deliver_through_clamped = through
            self.flight.deliver_through = last_complete
            self.state["in_flight"] = self.flight.to_state()

    def confirm(self, rows_done: int) -> None:
        """Rows up to `rows_done` reached the target (once the next STATE is written)."""
        assert self.flight is not None
        self.flight.rows_done = rows_done
        self.state["in_flight"]["rows_done"] = rows_done

    def read(self) -> None:
        """Every row of the export was emitted."""
        self._move(Phase.READ)

    def deliver(self) -> None:
        """Move the feed's bookmark past the export's days and forget it in flight."""
        self._move(Phase.DELIVERED)
        assert self.flight is not None
        self.state.pop("in_flight", None)
        if self.flight.deliver_through is not None:
            self.state["delivered_through"] = self.flight.deliver_through
        self.state["last_export_id"] = self.flight.export_id

    def fail(self, reason: str) -> None:
        """Stop this feed's delivery for this run; the state keeps its export in flight."""
        self._move(Phase.FAILED)
        self.error = reason

    # Views

    @property
    def export_id(self) -> str | None:
        """The export's id, once it exists."""
        return self.flight.export_id if self.flight else None

    @property
    def next_row(self) -> int:
        """The first row not yet confirmed (1-based)."""
        return (self.flight.rows_done if self.flight else 0) + 1

    @property
    def page_size(self) -> int | None:
        """Rows per page: as the API echoes it, else as the export was asked for (in flight)."""
        if self.summary is not None and self.summary.page_size:
            return self.summary.page_size
        return (self.flight.page_size or None) if self.flight else None

    def describe(self, seen: ExportSummary | None = None) -> str:
        """The export and its window, for log lines and errors.

        `seen`: the export's summary as the API gives it now, when the job does not hold one.
        """
        start, end = (self.flight.start_date, self.flight.end_date) if self.flight else (None, None)
        summary = self.summary or seen
        if summary is not None:
            start, end = summary.start_date or start, summary.end_date or end
        what = f"export {self.export_id}" if self.export_id else "the export"
        return f"{what} of feed {self.feed_id} ({start or '?'}..{end or '?'})"
