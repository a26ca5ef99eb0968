"""Shared fixtures: the local ContactBased API on loopback and configs pointing at it."""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

import pytest

from tap_contactbased import retry
from tap_contactbased.job import WaitPolicy
from tests.distributions import Distributions, build
from tests.fake_api import FakeContactBased
from tests.fast_retries import FAST_RETRY_WAITS

if t.TYPE_CHECKING:
    from tap_contactbased.settings import Settings

# Every stream of the tap, in the order a sync runs them.
ALL_STREAMS = [
    "bundles",
    "credits",
    "export_rows",
    "exports",
    "feed_limit",
    "feed_totals",
    "feeds",
    "filter_fields",
    "enrichment",
]

# Recognisable, so that tests can prove it never leaks.
API_KEY = "cbk_live_SECRET_c4n4ry_7f3a9e21"
TODAY = datetime.date(2026, 11, 27)
YESTERDAY = TODAY - datetime.timedelta(days=1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="also run the long randomized fault and kill campaigns (minutes)",
    )
    parser.addoption("--long-seeds", type=int, default=40, help="runs of the long campaigns")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: long randomized campaign, run with --long")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    # Deselected, not skipped: the default suite is the full suite; --long adds campaigns.
    keep = [item for item in items if "long" not in item.keywords]
    config.hook.pytest_deselected(items=[item for item in items if "long" in item.keywords])
    items[:] = keep


@pytest.fixture
def long_seeds(request: pytest.FixtureRequest) -> int:
    """How many runs a long campaign makes."""
    return int(request.config.getoption("--long-seeds"))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the retry policy, shrink its waits: tests exercise retries, not patience."""
    for name, value in FAST_RETRY_WAITS.items():
        monkeypatch.setattr(retry, name, value)


def shorten_export_waits(monkeypatch: pytest.MonkeyPatch, **seconds: float) -> None:
    """Give up on exports after `seconds` (`timeout_seconds`, `stall_timeout_seconds`).

    Below the settings' floors, in this process only: for tests of a run that gives up. The
    run takes its waits from `WaitPolicy.from_settings` alone, so that is what is shortened.
    """
    of_settings = WaitPolicy.from_settings

    def shortened(settings: Settings) -> WaitPolicy:
        return dataclasses.replace(of_settings(settings), **seconds)

    monkeypatch.setattr(WaitPolicy, "from_settings", shortened)


@pytest.fixture
def api() -> t.Iterator[FakeContactBased]:
    """A local ContactBased API with three small feeds, its clock on TODAY."""
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as server:
        yield server


@pytest.fixture
def paged_api() -> t.Iterator[FakeContactBased]:
    """Feeds with enough rows for several pages of 1,000, built slowly enough to kill a run."""
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.4, rows_per_day=(250, 400)
    ) as server:
        yield server


def make_config(api: FakeContactBased, **overrides: t.Any) -> dict[str, t.Any]:
    """A config for the tap against `api`, polling as often as the settings allow."""
    config: dict[str, t.Any] = {
        "api_key": API_KEY,
        "api_url": api.url,
        "feed_ids": api.feed_ids[:2],
        "lookback_days": 7,
        "page_size": 1000,
        "poll_interval_max_seconds": 0.5,  # the floor
        "export_timeout_seconds": 60,
        "export_stall_timeout_seconds": 60,
        "request_timeout_seconds": 10,
    }
    config.update(overrides)
    return config


@pytest.fixture
def config(api: FakeContactBased) -> dict[str, t.Any]:
    """The default config against the `api` fixture."""
    return make_config(api)


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The wheel and the sdist of the repository, built once per session with `uv build`."""
    return build(tmp_path_factory.mktemp("dist"))
