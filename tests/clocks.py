"""A virtual clock for the retry loop: time passes only when the loop sleeps."""

from __future__ import annotations

import pytest

from tap_contactbased import retry


class VirtualClock:
    """`monotonic()` and `sleep()` of `retry.Clock`; `sleep` records each wait and advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float, /) -> None:
        self.waits.append(seconds)
        self.now += seconds


def virtual_retry_clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """Put the retry loop on a new virtual clock, with the tap's real waits (1 s to 60 s).

    The suite shrinks the waits (conftest's `fast_retries`); on a virtual clock the real
    ones cost nothing, and a test can read the time a give-up took.
    """
    clock = VirtualClock()
    monkeypatch.setattr(retry, "SYSTEM_CLOCK", clock)
    monkeypatch.setattr(retry, "INITIAL_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(retry, "MAX_WAIT_SECONDS", 60.0)
    return clock
