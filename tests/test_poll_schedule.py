"""When the scheduler asks for building exports again (`scheduler.PollSchedule`).

The interval doubles after each poll up to the cap, and each wait is spread over ±25 % of it
so that many taps started by the same cron do not poll in step.
"""

from __future__ import annotations

import random

import pytest

from tap_contactbased.job import WaitPolicy
from tap_contactbased.scheduler import PollSchedule

WAIT = WaitPolicy(
    timeout_seconds=3600,
    stall_timeout_seconds=600,
    max_interval_seconds=30,
    first_interval_seconds=5,
)


def waits(draw: float, polls: int, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between `polls` polls, each made as soon as it is due, with `draw` as luck."""
    monkeypatch.setattr(random, "random", lambda: draw)
    schedule = PollSchedule(WAIT, now=100.0)
    found = [schedule.next_poll - 100.0]
    for _ in range(polls):
        now = schedule.next_poll
        schedule.polled(now)
        found.append(schedule.next_poll - now)
    return found


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        pytest.param(0.0, [5, 7.5, 15, 22.5, 22.5], id="shortest"),
        pytest.param(0.5, [5, 10, 20, 30, 30], id="middle"),
        pytest.param(1.0, [5, 12.5, 25, 37.5, 37.5], id="longest"),
    ],
)
def test_the_interval_doubles_to_the_cap_within_a_quarter_either_way(
    draw: float, expected: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert waits(draw, 4, monkeypatch) == expected


def test_the_first_poll_is_no_later_than_the_cap() -> None:
    slow_start = WaitPolicy(3600, 600, max_interval_seconds=2, first_interval_seconds=5)

    assert PollSchedule(slow_start, now=0.0).next_poll == 2


def test_a_poll_is_due_at_its_time_or_at_the_first_deadline() -> None:
    schedule = PollSchedule(WAIT, now=0.0)

    assert not schedule.due(4.9, deadlines=[60.0])
    assert schedule.due(5.0, deadlines=[60.0])
    assert schedule.due(3.0, deadlines=[60.0, 3.0])
    assert not schedule.due(2.9, deadlines=[3.0])
