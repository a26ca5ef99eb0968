"""The one retry loop: the waits it takes, and when and how it gives up (on a virtual clock)."""

from __future__ import annotations

import logging
import typing as t

import pytest
import requests

from tap_contactbased import retry
from tap_contactbased.errors import ExportError, RereadNeeded, TransientApiError
from tap_contactbased.retry import Attempts, RetryPolicy, retry_after_seconds, retrying
from tap_contactbased.settings import Settings
from tests.clocks import VirtualClock

LOGGER = logging.getLogger("tests.retry")
WHAT = "Sending GET /organization/credits"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits exactly as the policy computes them, so that a test can name each one."""
    monkeypatch.setattr(RetryPolicy, "jitter", staticmethod(lambda seconds: seconds))


def policy(*, max_tries: int = 8, max_seconds: float = 10_000.0) -> RetryPolicy:
    return RetryPolicy(
        initial_wait=1.0, max_wait=60.0, max_tries=max_tries, max_seconds=max_seconds
    )


def failure(headers: dict[str, str] | None = None) -> TransientApiError:
    """A 429 answer's error, with `headers`; without any, a dropped connection's."""
    if headers is None:
        return TransientApiError("GET /organization/credits: the connection failed")
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return TransientApiError("GET /organization/credits: 429 Too Many Requests", response)


def always_failing(error: TransientApiError) -> tuple[list[int], t.Callable[[], t.NoReturn]]:
    """A request that fails every time, and the list that counts its tries."""
    tries: list[int] = []

    def attempt() -> t.NoReturn:
        tries.append(1)
        raise error

    return tries, attempt


@pytest.mark.usefixtures("no_jitter")
def test_retry_waits_honour_retry_after_and_fall_back_to_exponential(clock: VirtualClock) -> None:
    attempts = Attempts(WHAT, policy(), LOGGER, clock)

    for error in (failure({"Retry-After": "7"}), failure({}), failure({}), failure()):
        attempts.failed(error)

    assert clock.waits == [7.0, 2.0, 4.0, 8.0]


def test_the_waits_are_spread_by_up_to_a_quarter(clock: VirtualClock) -> None:
    attempts = Attempts(WHAT, policy(), LOGGER, clock)

    for _ in range(5):
        attempts.failed(failure({"Retry-After": "4"}))

    assert all(4.0 <= wait <= 5.0 for wait in clock.waits)
    assert len(set(clock.waits)) > 1  # spread, not one wait for all


@pytest.mark.usefixtures("no_jitter")
@pytest.mark.parametrize(
    "value",
    [" ", "soon", "nan", "Mon, 20 Nov 99999 12:00:00 GMT", "Mon, 20 Nov 9999999999 12:00:00 GMT"],
    ids=["blank", "a word", "nan", "year past datetime", "year past an int"],
)
def test_a_retry_after_that_is_neither_seconds_nor_a_date_is_ignored(
    clock: VirtualClock, value: str
) -> None:
    attempts = Attempts(WHAT, policy(), LOGGER, clock)

    attempts.failed(failure({"Retry-After": value}))

    assert clock.waits == [1.0]  # the first exponential wait, as without the header


def test_retry_after_accepts_an_http_date() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT"

    assert retry_after_seconds(response) == 0.0


def test_a_request_is_tried_at_most_max_tries_times(clock: VirtualClock) -> None:
    tries, attempt = always_failing(failure())

    with pytest.raises(TransientApiError) as raised:
        retrying(Attempts(WHAT, policy(), LOGGER, clock), attempt)

    assert len(tries) == retry.MAX_TRIES == 8
    assert str(raised.value) == (
        f"GET /organization/credits: the connection failed (8 tries in {sum(clock.waits):.0f} s)"
    )


@pytest.mark.usefixtures("no_jitter")
def test_it_gives_up_at_max_seconds_after_the_first_failure(clock: VirtualClock) -> None:
    tries, attempt = always_failing(failure())

    with pytest.raises(TransientApiError, match=r"\(8 tries in 120 s\)$"):
        retrying(Attempts(WHAT, policy(max_seconds=120), LOGGER, clock), attempt)

    # 0, 1, 3, 7, 15, 31, 63 and 120: the last wait is cut to the deadline.
    assert clock.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 57.0]
    assert clock.now == 120.0
    assert len(tries) == 8


@pytest.mark.usefixtures("no_jitter")
def test_a_short_budget_ends_the_tries_before_max_tries(clock: VirtualClock) -> None:
    tries, attempt = always_failing(failure())

    with pytest.raises(TransientApiError, match=r"\(5 tries in 10 s\)$"):
        retrying(Attempts(WHAT, policy(max_seconds=10), LOGGER, clock), attempt)

    assert clock.waits == [1.0, 2.0, 4.0, 3.0]
    assert len(tries) == 5


def test_a_retry_after_longer_than_the_budget_left_gives_up_and_says_so(
    clock: VirtualClock,
) -> None:
    attempts = Attempts(WHAT, policy(max_seconds=120), LOGGER, clock)

    with pytest.raises(TransientApiError) as raised:
        attempts.failed(failure({"Retry-After": "300"}))

    assert str(raised.value) == (
        "GET /organization/credits: 429 Too Many Requests (the API asked to wait 300 s, more "
        "than retry_max_seconds allows; 1 try in 0 s)"
    )
    assert clock.waits == []


@pytest.mark.usefixtures("no_jitter")
def test_a_failure_further_along_starts_a_fresh_budget(clock: VirtualClock) -> None:
    attempts = Attempts(WHAT, policy(max_seconds=120), LOGGER, clock)
    for _ in range(7):
        attempts.failed(failure(), position=1)

    for _ in range(7):  # progress: 7 more failures, and again up to 120 s from the first
        attempts.failed(failure(), position=1_001)
    with pytest.raises(TransientApiError, match=r"\(8 tries in 120 s\)$"):
        attempts.failed(failure(), position=1_001)

    assert clock.waits == 2 * [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 57.0]


def test_each_retry_is_one_warning_naming_what_when_and_why(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = Attempts(WHAT, policy(), LOGGER, clock)

    with caplog.at_level(logging.WARNING, LOGGER.name):
        attempts.failed(failure({"Retry-After": "2"}))

    [record] = caplog.records
    assert record.getMessage() == (
        f"{WHAT} again in {clock.waits[0]:.1f} s (try 2 of 8): GET /organization/credits: 429 "
        "Too Many Requests"
    )


def test_a_part_of_an_export_read_too_often_stops_the_feed(clock: VirtualClock) -> None:
    reread = RereadNeeded("the page held 3 rows, 1,000 expected", what="page 2 of export e1")
    tries, attempt = always_failing(reread)

    with pytest.raises(ExportError) as raised:
        retrying(Attempts("Reading page 2 of export e1", policy(), LOGGER, clock), attempt)

    assert str(raised.value) == (
        "Could not read page 2 of export e1: the page held 3 rows, 1,000 expected (8 tries in "
        f"{sum(clock.waits):.0f} s). Rows up to the last confirmed page are saved; the next "
        "run resumes there"
    )
    assert len(tries) == 8


def test_a_transport_failure_given_up_stays_retriable_for_the_sdk() -> None:
    error = failure({"Retry-After": "1"})

    given_up = error.given_up(8, 119.6)

    assert type(given_up) is TransientApiError
    assert str(given_up) == "GET /organization/credits: 429 Too Many Requests (8 tries in 120 s)"
    assert given_up.response is error.response


def test_a_policy_from_the_settings_reads_the_waits_when_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_config({"retry_max_seconds": 30})
    monkeypatch.setattr(retry, "INITIAL_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(retry, "MAX_WAIT_SECONDS", 40.0)

    assert RetryPolicy.from_settings(settings) == RetryPolicy(0.5, 40.0, 8, 30.0)
    assert RetryPolicy.from_settings(settings, max_tries=3).max_tries == 3
    assert Settings.from_config({}).retry_max_seconds == 120.0
