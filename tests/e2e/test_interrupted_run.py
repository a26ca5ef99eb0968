"""A run killed while it reads an export, then a normal run: every row lands once."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import typing as t

import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.e2e.conftest import landed_keys, postgres_env, tap_env
from tests.e2e.meltano import Meltano, wait_for
from tests.e2e.postgres import ConnectionInfo
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api.faults import Decision

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


class PageReads:
    """Counts the page reads the API receives, and holds its answer to one of them.

    Held, the tap is blocked on that answer with its earlier rows and state written out:
    a precise moment, while the export is being read, to kill it at.
    """

    def __init__(self, api: FakeContactBased, hold: int, seconds: float) -> None:
        """Wrap the API's fault engine; the `hold`-th page read waits `seconds` more."""
        self.count = 0
        self.held = threading.Event()
        self._lock = threading.Lock()
        decide = api.fault_engine.decide

        def deciding(
            *, download: bool = False, page: bool = False, endpoint: str | None = None
        ) -> Decision:
            decision = decide(download=download, page=page, endpoint=endpoint)
            if not page:
                return decision
            with self._lock:
                self.count += 1
                number = self.count
            if number != hold:
                return decision
            self.held.set()
            return dataclasses.replace(decision, delay=decision.delay + seconds)

        api.fault_engine.decide = deciding  # type: ignore[method-assign]


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
