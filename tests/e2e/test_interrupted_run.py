"""A run killed while it reads an export, then a normal run: every row lands once."""

from __future__ import annotations

import os
import signal
import typing as t

import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.e2e.conftest import landed_keys, postgres_env, tap_env
from tests.e2e.interrupt import PageReads
from tests.e2e.meltano import Meltano, wait_for
from tests.e2e.postgres import ConnectionInfo
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased

RUN = ("run", "tap-contactbased", "target-postgres")
ROWS_PER_DAY = 1500  # lookback_days 2: 1,500 rows to deliver per feed, in 3 pages of 1,000
PAGE_SIZE = 1000
HOLD_SECONDS = 20  # longer than any wait below: the tap is killed while it waits


@pytest.fixture
def big_api() -> t.Iterator[FakeContactBased]:
    """Feeds whose exports span several pages."""
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, rows_per_day=ROWS_PER_DAY
    ) as server:
        yield server


@pytest.mark.parametrize("victim", ["tap", "whole-run"])
def test_after_a_killed_run_every_row_lands_once_from_one_export_per_feed(
    big_api: FakeContactBased, warehouse: ConnectionInfo, meltano: Meltano, victim: str
) -> None:
    api = big_api
    meltano.set(
        **tap_env(api, lookback_days=2, read_mode="pages", page_size=PAGE_SIZE),
        **postgres_env(warehouse),
        # Small loads, so that some rows (and the state after them) land before the kill.
        TARGET_POSTGRES_BATCH_SIZE_ROWS="500",
    )
    page_reads = PageReads(api, hold=2, seconds=HOLD_SECONDS)
    with meltano.start(*RUN) as running:
        wait_for(page_reads.held.is_set, "the second page read", timeout=120)
        if victim == "tap":
            # The first page's rows land (batches of 500), then the tap dies mid-export. Waiting
            # matters: when a tap dies, Meltano drops what it had read from the tap but not yet
            # passed on to the target.
            wait_for(lambda: len(landed_keys(warehouse)) >= PAGE_SIZE, "the first page to land")
            tap = running.find_child("tap-contactbased", "--catalog", exclude="--discover")
            assert tap is not None, "no tap-contactbased process under meltano"
            os.kill(tap, signal.SIGKILL)
        else:
            running.kill_group()
        interrupted = running.wait()

    assert interrupted.returncode != 0
    first_export = api.exports[api.created_exports[0]]
    assert first_export.total_pages > 2, "the first export was not read to its end"
    landed_before = landed_keys(warehouse)
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
        assert len(landed_before) == PAGE_SIZE
