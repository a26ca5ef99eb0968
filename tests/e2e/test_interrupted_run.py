"""A run killed while it reads an export, then a normal run: every row lands once."""

from __future__ import annotations

import os
import signal
import typing as t

import pytest

from tests.conftest import API_KEY, TODAY
from tests.e2e.conftest import YESTERDAY, landed_keys, postgres_env, tap_env
from tests.e2e.meltano import Meltano, wait_for
from tests.e2e.postgres import ConnectionInfo
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased

RUN = ("run", "tap-contactbased", "target-postgres")
PAGE = "/intent/feeds/exports/page"
ROWS_PER_DAY = 1500  # with lookback_days 2: 1,500 rows to deliver per feed, 3 pages of 1,000


@pytest.fixture
def slow_api() -> t.Iterator[FakeContactBased]:
    """Feeds with several pages per export, every answer a little late."""
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, rows_per_day=ROWS_PER_DAY
    ) as server:
        server.faults.latency_seconds = 0.2
        yield server


@pytest.mark.parametrize("victim", ["tap", "whole-run"])
def test_after_a_killed_run_every_row_lands_once_from_one_export_per_feed(
    slow_api: FakeContactBased, warehouse: ConnectionInfo, meltano: Meltano, victim: str
) -> None:
    api = slow_api
    meltano.set(
        **tap_env(api, lookback_days=2, read_mode="pages"),
        **postgres_env(warehouse),
        # Small loads, so that some rows (and the state after them) land before the kill.
        TARGET_POSTGRES_BATCH_SIZE_ROWS="500",
    )
    running = meltano.start(*RUN)
    wait_for(lambda: api.count_requests("POST", PAGE) >= 2, "the second page read", timeout=120)
    if victim == "tap":
        tap = running.find_child("tap-contactbased", "--catalog", exclude="--discover")
        assert tap is not None, "no tap-contactbased process under meltano"
        os.kill(tap, signal.SIGKILL)
    else:
        running.kill_group()
    interrupted = running.wait()

    assert interrupted.returncode != 0
    pages_read = api.count_requests("POST", PAGE)
    first_export = api.exports[api.created_exports[0]]
    assert pages_read < first_export.total_pages, "the kill came after the first export's reads"
    landed_before = landed_keys(warehouse)

    api.faults.latency_seconds = 0.0
    # Meltano marks a run it could not close as still running: a user passes --force.
    if victim == "whole-run":
        meltano(*RUN, "--force")
    else:
        meltano(*RUN)

    exports_by_feed = sorted(api.exports[e].feed_id for e in api.created_exports)
    assert exports_by_feed == sorted(api.feed_ids[:2]), "an export was created twice"
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert len(expected) == 2 * ROWS_PER_DAY
    keys = landed_keys(warehouse)
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == set(expected)
    assert set(landed_before) <= set(keys)
    if victim == "tap":
        # The target confirmed the first page when its input ended, and Meltano kept that
        # state: the second run resumed after it instead of reading the export again.
        assert landed_before
        total_pages = sum(api.exports[e].total_pages for e in api.created_exports)
        assert api.count_requests("POST", PAGE) - pages_read < total_pages
