"""A virtual clock for the retry loop: time passes only when the loop sleeps."""

from __future__ import annotations


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
