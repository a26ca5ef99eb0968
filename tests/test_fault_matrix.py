"""Full syncs under each fault the API can throw: nothing lost, nothing paid twice.

Every scenario syncs all streams of two feeds (several pages each) with enrichment, and
compares the result, upserted by primary key, with what the local API served and charged.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.conftest import (
    ALL_STREAMS,
    YESTERDAY,
    make_config,
    shorten_export_waits,
)
from tests.fake_api import FakeContactBased
from tests.run_checks import new_api
from tests.singer_run import SyncResult, run_tap, selected_catalog
from tests.sync_checks import Outcome, check_sync

BUNDLES = ["emails"]
Setup = Callable[[FakeContactBased], None]


def sync_until_done(
    api: FakeContactBased, config: dict[str, t.Any], *, clear: Setup | None = None, runs: int = 3
) -> tuple[list[SyncResult], list[BaseException]]:
    """Sync; after a failure, `clear` the fault and run again from the last state."""
    catalog = selected_catalog(config, ALL_STREAMS)
    results: list[SyncResult] = []
    errors: list[BaseException] = []
    state: dict[str, t.Any] | None = None
    for _ in range(runs):
        result = run_tap(config, catalog=catalog, state=state, raise_errors=False)
        results.append(result)
        state = result.last_state or state
        if result.error is None:
            break
        errors.append(result.error)
        if clear is not None:
            clear(api)
    return results, errors


def outcome_of(api: FakeContactBased, results: list[SyncResult]) -> Outcome:
    rows = [r for result in results for r in result.records("export_rows")]
    enriched = [r for result in results for r in result.records("enrichment")]
    return check_sync(api, rows, enriched, BUNDLES, YESTERDAY)


@pytest.fixture(scope="module")
def clean_spend() -> int:
    """Records credits one clean run spends: the figure every faulty run must match."""
    api = new_api()
    try:
        results, errors = sync_until_done(api, make_config(api, enrichment_bundles=BUNDLES))
        assert not errors
        return outcome_of(api, results).records_spent
    finally:
        api.stop()


def knobs(**values: t.Any) -> Setup:
    def setup(api: FakeContactBased) -> None:
        for name, value in values.items():
            setattr(api.faults, name, value)

    return setup


def slow_answers(api: FakeContactBased) -> None:
    # Every 9th answer arrives after the tap's 1 s timeout, the others just before it.
    api.faults.latency_seconds = 1.2
    api.faults.latency_every = 9


def answered_with_an_error(api: FakeContactBased) -> bool:
    return any(r.status != 200 for r in api.requests)


def held_answers_back(api: FakeContactBased) -> bool:
    return api.fault_engine.delayed_answers > 0


@dataclass(frozen=True)
class Scenario:
    setup: Setup
    settings: dict[str, t.Any] = field(default_factory=dict)
    # What proves that the fault happened in the run (a scenario that injects nothing
    # would pass for the wrong reason).
    fault_happened: Callable[[FakeContactBased], bool] = answered_with_an_error


SCENARIOS: dict[str, Scenario] = {
    "429 with Retry-After": Scenario(knobs(rate_limit_every=3, retry_after=0.01)),
    "429 without Retry-After": Scenario(knobs(rate_limit_every=3, retry_after=None)),
    "503 bursts": Scenario(knobs(server_error_every=2)),
    "dropped connections": Scenario(knobs(drop_connection_every=4)),
    "pages cut mid-response": Scenario(knobs(cut_page_every=2), {"read_mode": "pages"}),
    "CSV cut mid-file": Scenario(knobs(truncate_downloads=3), {"read_mode": "csv"}),
    "answers near the timeout": Scenario(
        slow_answers, {"request_timeout_seconds": 1}, held_answers_back
    ),
    "expired download URLs": Scenario(knobs(expire_urls=2), {"read_mode": "csv"}),
    "page 404 while ready": Scenario(knobs(page_not_found=2), {"read_mode": "pages"}),
    "invalid JSON answers": Scenario(knobs(bad_json_every=5)),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sync_under_fault_loses_nothing_and_pays_once(name: str, clean_spend: int) -> None:
    scenario = SCENARIOS[name]
    api = new_api()
    try:
        config = make_config(api, enrichment_bundles=BUNDLES, **scenario.settings)
        scenario.setup(api)

        results, errors = sync_until_done(api, config)

        assert errors == []
        outcome = outcome_of(api, results)
        assert outcome.rows_expected > 2000
        assert (outcome.rows_lost, outcome.rows_wrong) == (0, 0)
        assert outcome.exports_created == outcome.exports_ready == 2
        assert outcome.records_spent == clean_spend
        assert (outcome.enrichment_missing, outcome.enrichment_overcharged) == (0, 0)
        assert scenario.fault_happened(api)
    finally:
        api.stop()


def unstall(api: FakeContactBased) -> None:
    api.faults.stall_exports = False
    for export in api.exports.values():
        export.stalled = False


@pytest.mark.parametrize(
    ("setup", "clear", "message", "replaced"),
    [
        pytest.param(
            knobs(fail_exports=True), knobs(fail_exports=False), "failed to build", 2, id="failed"
        ),
        pytest.param(knobs(stall_exports=True), unstall, "made no progress", 0, id="stalled"),
    ],
)
def test_a_failed_run_is_finished_by_the_next_one(
    setup: Setup,
    clear: Setup,
    message: str,
    replaced: int,
    clean_spend: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shorten_export_waits(monkeypatch, stall_timeout_seconds=0.3)
    api = new_api()
    try:
        config = make_config(api, enrichment_bundles=BUNDLES)
        setup(api)

        results, errors = sync_until_done(api, config, clear=clear)

        assert len(errors) == 1
        assert message in str(errors[0])
        outcome = outcome_of(api, results)
        assert (outcome.rows_lost, outcome.rows_wrong) == (0, 0)
        assert outcome.exports_ready == 2
        assert outcome.records_spent == clean_spend
        assert outcome.enrichment_missing == 0
        # Both feeds' exports were built at once. A failed export is released by the API and
        # made again; a stalled one is resumed, not replaced.
        assert outcome.exports_created == replaced + 2
    finally:
        api.stop()


def test_unknown_status_stops_every_run_without_a_new_export() -> None:
    api = new_api()
    try:
        config = make_config(api, enrichment_bundles=BUNDLES)
        api.faults.unknown_status = "archived"

        results, errors = sync_until_done(api, config, runs=2)

        assert len(errors) == 2
        assert all("status 'archived'" in str(e) for e in errors)
        # Both feeds' exports, made by the first run; the second stops on them, creating none.
        assert len(api.created_exports) == len(config["feed_ids"])
        assert all(r.records("export_rows") == [] for r in results)
    finally:
        api.stop()


def random_fault_run(seed: int, rate: float, read_mode: str) -> Outcome:
    api = new_api()
    try:
        config = make_config(api, enrichment_bundles=BUNDLES, read_mode=read_mode)
        api.faults.random_rate = rate
        api.faults.random_seed = seed
        api.faults.random_latency_seconds = 0.01

        results, errors = sync_until_done(api, config, runs=1)

        assert errors == [], errors
        return outcome_of(api, results)
    finally:
        api.stop()


@pytest.mark.parametrize(("seed", "read_mode"), [(1, "csv"), (2, "pages"), (3, "csv")])
def test_random_faults_at_a_fifth_of_requests(seed: int, read_mode: str, clean_spend: int) -> None:
    outcome = random_fault_run(seed, 0.2, read_mode)

    assert (outcome.rows_lost, outcome.rows_wrong) == (0, 0)
    assert outcome.exports_created == 2
    assert outcome.records_spent == clean_spend
    assert (outcome.enrichment_missing, outcome.enrichment_overcharged) == (0, 0)


@pytest.mark.long
def test_random_faults_long(clean_spend: int, long_seeds: int) -> None:
    totals: dict[str, int] = {"runs": 0, "lost": 0, "wrong": 0, "extra_exports": 0, "overspent": 0}
    for seed in range(100, 100 + long_seeds):
        outcome = random_fault_run(seed, 0.2, "csv" if seed % 2 else "pages")
        totals["runs"] += 1
        totals["lost"] += outcome.rows_lost
        totals["wrong"] += outcome.rows_wrong
        totals["extra_exports"] += outcome.exports_created - 2
        totals["overspent"] += outcome.records_spent - clean_spend
    print(f"random fault runs: {totals}")
    assert totals == {"runs": long_seeds, "lost": 0, "wrong": 0, "extra_exports": 0, "overspent": 0}
