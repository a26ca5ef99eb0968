"""The one retry loop: how long to wait, how often, and for how long in all.

Where each budget comes from and what ends it: docs/architecture.md, "Where retries live".
"""

from __future__ import annotations

import email.utils
import math
import random
import time
import typing as t
from dataclasses import dataclass

from tap_contactbased.errors import TransientApiError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    import requests

    from tap_contactbased.settings import Settings

T = t.TypeVar("T")

# Read when a policy is built (`RetryPolicy.from_settings`), so tests can shrink the waits.
INITIAL_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 60.0
MAX_TRIES = 8
MAX_RETRY_AFTER_SECONDS = 300.0


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta or HTTP date), capped.

    None when there is none, or when it is neither (`soon`, `nan`, a date no datetime holds).
    """
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (ValueError, OverflowError):
            return None
    return None if math.isnan(seconds) else min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class RetryPolicy:
    initial_wait: float
    max_wait: float
    max_tries: int
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings, *, max_tries: int | None = None) -> RetryPolicy:
        return cls(
            initial_wait=INITIAL_WAIT_SECONDS,
            max_wait=MAX_WAIT_SECONDS,
            max_tries=max_tries or MAX_TRIES,
            max_seconds=settings.retry_max_seconds,
        )

    def wait(self, attempt: int, response: requests.Response | None) -> float:
        """Seconds to wait after failed try `attempt` (from 1): `Retry-After`, else doubling."""
        asked = retry_after_seconds(response)
        if asked is not None:
            return asked
        return min(self.max_wait, self.initial_wait * 2.0 ** (attempt - 1))

    @staticmethod
    def jitter(seconds: float) -> float:
        """Spread retries by up to a quarter of the wait, never below what was asked."""
        return seconds * (1 + random.random() / 4)  # noqa: S311 - jitter, not cryptography


class Clock(t.Protocol):
    """Where the loop reads the time and waits: the system's, or a test's virtual one."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, /) -> None: ...


# The `time` module is a clock as it is. Tests swap in a virtual one with monkeypatch.
SYSTEM_CLOCK: Clock = time


class Attempts:
    """One budget: the tries and seconds of one request (or of one part of an export)."""

    def __init__(
        self, what: str, policy: RetryPolicy, logger: logging.Logger, clock: Clock
    ) -> None:
        """Count the failures of `what` (a verb phrase: "Reading page 3 of ...")."""
        self._what = what
        self._policy = policy
        self._logger = logger
        self._clock = clock
        self._tries = 0
        self._first_failure = 0.0
        self._position = 0

    def failed(self, exc: TransientApiError, *, position: int = 0) -> None:
        """Count a failed try that got as far as `position`; wait, or raise once spent.

        A failure further along than the last one starts a fresh budget: progress was made.
        The error raised hides what `exc` hides (what requests raised): call this outside
        the `except` block that caught `exc`, or Python chains `exc` itself instead.
        """
        policy, now = self._policy, self._clock.monotonic()
        if position > self._position:
            self._tries, self._position = 0, position
        self._tries += 1
        if self._tries == 1:
            self._first_failure = now
        spent, left = now - self._first_failure, self._first_failure + policy.max_seconds - now
        if self._tries >= policy.max_tries or left <= 0:
            raise exc.given_up(self._tries, spent) from None
        asked = retry_after_seconds(exc.response)
        if asked is not None and asked > left:
            why = f"the API asked to wait {asked:.0f} s, more than retry_max_seconds allows"
            raise exc.given_up(self._tries, spent, why=why) from None
        wait = min(policy.jitter(policy.wait(self._tries, exc.response)), left)
        self._logger.warning(
            "%s again in %.1f s (try %d of %d): %s",
            self._what,
            wait,
            self._tries + 1,
            policy.max_tries,
            exc,
        )
        self._clock.sleep(wait)


def retrying(attempts: Attempts, attempt: Callable[[], T]) -> T:
    """What `attempt` returns, tried again under `attempts` while it fails transiently."""
    while True:
        try:
            return attempt()
        except TransientApiError as exc:
            failure = exc
        attempts.failed(failure)
