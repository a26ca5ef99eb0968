"""SIGKILL at random points of a multi-feed, multi-page sync with enrichment.

Each attempt is killed after a random number of messages and restarted from the last state
it emitted; the end result must be what one clean run delivers and spends.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY, make_config
from tests.fake_api import FakeContactBased
from tests.kill_harness import (
    after_messages,
    all_building,
    run_with_kills,
    while_reading_with_others_in_flight,
)
from tests.singer_run import selected_catalog
from tests.sync_checks import Outcome, check_sync

BUNDLES = ["emails", "phones"]
STREAMS = ["export_rows", "enrichment", "credits"]


def campaign(seed: int, kills: int, workdir: Path) -> tuple[Outcome, int, int]:
    """Run one killed-and-restarted sync.

    Returns its outcome, the kills made, and the credits a clean run of the same data spends.
    """
    rng = random.Random(seed)
    read_mode = rng.choice(["csv", "pages"])
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.3, rows_per_day=(200, 300)
    ) as api:
        config = make_config(api, enrichment_bundles=BUNDLES, read_mode=read_mode)
        catalog = selected_catalog(config, STREAMS)
        points = [after_messages(rng.randint(1, 2500)) for _ in range(kills)]

        result = run_with_kills(config, catalog, points, workdir)

        outcome = check_sync(
            api,
            result.records("export_rows"),
            result.records("enrichment"),
            BUNDLES,
            YESTERDAY,
        )
        clean = sum(api.exports[e].total_rows for e in api.created_exports)
        return outcome, result.kills, clean


@pytest.mark.parametrize("seed", [11, 12])
def test_random_kills_lose_nothing_and_pay_once(seed: int, tmp_path: Path) -> None:
    outcome, kills, clean = campaign(seed, 6, tmp_path)

    assert kills >= 3
    assert outcome.rows_expected > 3000
    assert (outcome.rows_lost, outcome.rows_wrong) == (0, 0)
    assert outcome.exports_created == 2
    assert outcome.records_spent == clean
    assert (outcome.enrichment_missing, outcome.enrichment_overcharged) == (0, 0)


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
def test_kills_while_all_exports_build_and_while_several_are_read(
    tmp_path: Path, read_mode: str
) -> None:
    rng = random.Random(read_mode)
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, feed_count=4, build_seconds=1.0, rows_per_day=(150, 250)
    ) as api:
        config = make_config(
            api, feed_ids=api.feed_ids, enrichment_bundles=BUNDLES, read_mode=read_mode
        )
        catalog = selected_catalog(config, STREAMS)
        points = [
            all_building(4),
            while_reading_with_others_in_flight(rng.randint(1, 900)),
            *(after_messages(rng.randint(1, 3000)) for _ in range(3)),
        ]

        result = run_with_kills(config, catalog, points, tmp_path)

        # Killed once all four were building, then again while reading one of several.
        assert result.attempts[0].killed
        assert result.attempts[1].killed
        assert result.kills >= 3
        # Every kill after the first run resumed its exports: none was created again.
        assert len(api.created_exports) == 4
        outcome = check_sync(
            api,
            result.records("export_rows"),
            result.records("enrichment"),
            BUNDLES,
            YESTERDAY,
        )
        assert outcome.rows_expected > 4000
        assert (outcome.rows_lost, outcome.rows_wrong) == (0, 0)
        assert outcome.records_spent == sum(api.exports[e].total_rows for e in api.created_exports)
        assert (outcome.enrichment_missing, outcome.enrichment_overcharged) == (0, 0)


@pytest.mark.long
def test_random_kills_long(tmp_path: Path, long_seeds: int) -> None:
    totals = {"campaigns": 0, "kills": 0, "lost": 0, "wrong": 0, "extra_exports": 0}
    overspent = 0
    for seed in range(1000, 1000 + long_seeds):
        outcome, kills, clean = campaign(seed, 10, tmp_path / str(seed))
        totals["campaigns"] += 1
        totals["kills"] += kills
        totals["lost"] += outcome.rows_lost + outcome.enrichment_missing
        totals["wrong"] += outcome.rows_wrong
        totals["extra_exports"] += outcome.exports_created - 2
        overspent += outcome.records_spent - clean + outcome.enrichment_overcharged
    print(f"kill campaigns: {totals}, overspent: {overspent}")
    assert (totals["lost"], totals["wrong"], totals["extra_exports"], overspent) == (0, 0, 0, 0)
