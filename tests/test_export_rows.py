"""export_rows: find or create, wait, read, type, and deliver every row once."""

from __future__ import annotations

import datetime
import logging
import re
import typing as t

import pytest

from tap_contactbased.errors import ConfigError, CreditError, ExportError
from tests.conftest import API_KEY, TODAY, YESTERDAY, make_config, shorten_export_waits
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.singer_run import run_command, run_tap, selected_catalog


def exports_of(api: FakeContactBased) -> dict[str, str]:
    """feed_id -> the export the tap created for it."""
    return {api.exports[e].feed_id: e for e in api.created_exports}


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
def test_every_delivered_row_is_emitted_once_and_typed(
    paged_api: FakeContactBased, read_mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(paged_api, read_mode=read_mode)

    with caplog.at_level(logging.INFO):
        result = run_tap(config, streams=["export_rows"])

    records = result.records("export_rows")
    created = exports_of(paged_api)
    assert set(created) == set(config["feed_ids"])
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in created.values():
        assert paged_api.exports[export_id].total_pages >= 2
        expected.update(delivered_rows(paged_api, export_id, YESTERDAY))
    assert len(records) == len(expected)
    assert by_key(records) == expected
    assert all(r["signal_date"] <= YESTERDAY.isoformat() for r in records)
    assert any(isinstance(r["intent_score"], float) for r in records)
    # Each export's count of delivered rows, added up over its chunks, is what was emitted.
    delivered = re.findall(r"Delivered ([\d,]+) rows of", caplog.text)
    assert len(delivered) == len(created)
    assert sum(int(n.replace(",", "")) for n in delivered) == len(records)


def test_both_read_modes_give_identical_records(paged_api: FakeContactBased) -> None:
    pages = run_tap(make_config(paged_api, read_mode="pages"), streams=["export_rows"])
    csv = run_tap(make_config(paged_api, read_mode="csv"), streams=["export_rows"])

    assert csv.records("export_rows") == pages.records("export_rows")
    assert len(paged_api.created_exports) == 2  # the second run reused both exports


def test_hostile_csv_values_survive_exactly(api: FakeContactBased) -> None:
    result = run_tap(make_config(api, read_mode="csv", lookback_days=30), streams=["export_rows"])

    records = result.records("export_rows")
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert by_key(records) == expected
    # The served values hold every kind of trouble a CSV can carry: otherwise the
    # comparison above would prove less than it says.
    values = [v for r in expected.values() for v in r.values() if isinstance(v, str)]
    assert any("\n" in v for v in values)
    assert any('"' in v for v in values)
    assert any("," in v for v in values)
    assert any(not v.isascii() for v in values)


def test_export_is_reused_when_state_is_lost(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    first = run_tap(config, streams=["export_rows"])
    created = list(api.created_exports)

    again = run_tap(config, streams=["export_rows"], state={})

    assert api.created_exports == created
    assert by_key(again.records("export_rows")) == by_key(first.records("export_rows"))


def test_export_left_building_is_found_again_without_state(
    api: FakeContactBased, config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run that died while its export built: the export exists, the state was never kept.
    api.build_seconds = 0.3
    feed_id = config["feed_ids"][0]
    with monkeypatch.context() as patch:
        shorten_export_waits(patch, timeout_seconds=0.01)
        with pytest.raises(ExportError, match="was not ready after"):
            run_tap({**config, "feed_ids": [feed_id]}, streams=["export_rows"])
    assert len(api.created_exports) == 1

    result = run_tap({**config, "feed_ids": [feed_id]}, streams=["export_rows"], state={})

    assert len(api.created_exports) == 1
    assert len(result.records("export_rows")) == len(
        delivered_rows(api, api.created_exports[0], YESTERDAY)
    )


def test_failed_export_raises_with_the_build_error(
    api: FakeContactBased, config: dict[str, t.Any], tmp_path: t.Any
) -> None:
    api.faults.fail_exports = True

    result = run_command([], tmp_path, config=config)

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1
    assert "failed to build" in last
    assert api.exports[api.created_exports[0]].summary()["build_error"] in last


def test_exhausted_credit_pool_refuses_before_creating() -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY, credits_total=50) as api:
        with pytest.raises(
            CreditError, match=r"would reserve \d[\d,]* records credits .*only 50 are left"
        ):
            run_tap(make_config(api), streams=["export_rows"])
        assert api.created_exports == []


def test_cap_per_run_refuses_the_export_that_would_exceed_it(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    with pytest.raises(CreditError, match="max_records_per_run"):
        run_tap({**config, "max_records_per_run": 10}, streams=["export_rows"])
    assert api.created_exports == []


def test_expired_download_url_is_renewed(api: FakeContactBased, config: dict[str, t.Any]) -> None:
    api.faults.expire_urls = 1

    result = run_tap({**config, "feed_ids": config["feed_ids"][:1]}, streams=["export_rows"])

    export_id = api.created_exports[0]
    assert by_key(result.records("export_rows")) == delivered_rows(api, export_id, YESTERDAY)
    assert api.count_requests("POST", "/intent/feeds/exports/download-url") == 2


def test_column_drift_keeps_new_columns_and_nulls_missing_ones(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    catalog_config = {**config, "feed_ids": config["feed_ids"][:1]}
    catalog = selected_catalog(catalog_config, ["export_rows"])
    api.faults.extra_columns = ("buying_stage",)
    api.faults.drop_columns = ("postal_code",)
    api.faults.id_column = "cb_id"

    records = run_tap(catalog_config, catalog=catalog).records("export_rows")

    assert records
    assert all(r["postal_code"] is None for r in records)
    assert all(set(r["extra_columns"]) == {"buying_stage"} for r in records)
    assert by_key(records) == delivered_rows(api, api.created_exports[0], YESTERDAY)
    assert any(r["contact_id"] for r in records)
    served = api.exports[api.created_exports[0]].rows()
    assert [r["contact_id"] for r in records] == [
        s["cb_id"] for s in served if str(s["signal_date"]) <= YESTERDAY.isoformat()
    ]


def test_incremental_runs_on_consecutive_days_deliver_each_day_once(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    first = run_tap(config, streams=["export_rows"])
    api.today = TODAY + datetime.timedelta(days=1)
    second = run_tap(config, streams=["export_rows"], state=first.last_state)
    api.today = TODAY + datetime.timedelta(days=2)
    third = run_tap(config, streams=["export_rows"], state=second.last_state)

    for feed_id in config["feed_ids"]:
        days: list[str] = []
        for run in (first, second, third):
            days += [
                r["signal_date"] for r in run.records("export_rows") if r["feed_id"] == feed_id
            ]
        by_day: dict[str, int] = {}
        for seen in days:
            by_day[seen] = by_day.get(seen, 0) + 1
        window = [TODAY - datetime.timedelta(days=n) for n in range(6, -2, -1)]
        assert sorted(by_day) == [d.isoformat() for d in window]
        for day in window:
            complete = api.expected_rows(feed_id, day, day)
            assert by_day[day.isoformat()] == len(complete), day
    assert len(api.created_exports) == 3 * len(config["feed_ids"])


def test_same_day_rerun_creates_nothing(api: FakeContactBased, config: dict[str, t.Any]) -> None:
    first = run_tap(config, streams=["export_rows"])
    created = list(api.created_exports)

    again = run_tap(config, streams=["export_rows"], state=first.last_state)

    assert again.records("export_rows") == []
    assert api.created_exports == created


def test_snapshot_mode_includes_today(api: FakeContactBased, config: dict[str, t.Any]) -> None:
    result = run_tap({**config, "export_mode": "snapshot"}, streams=["export_rows"])

    days = {r["signal_date"] for r in result.records("export_rows")}
    assert TODAY.isoformat() in days


def test_plan_only_creates_nothing_and_reports(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    result = run_tap({**config, "plan_only": True}, streams=["export_rows"])

    assert result.records("export_rows") == []
    assert api.created_exports == []
    assert api.count_requests("POST", "/intent/feeds/exports/count") == len(config["feed_ids"])


def test_plan_only_with_a_reusable_export_counts_no_cost(
    api: FakeContactBased, config: dict[str, t.Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Reusing costs nothing: the spend check must not see an export of unknown cost, which
    # under max_records_per_run refuses the run and without it warns.
    feed_id = config["feed_ids"][0]
    one_feed = {**config, "feed_ids": [feed_id]}
    run_tap(one_feed, streams=["export_rows"])
    (reusable,) = api.created_exports
    on_api = api.exports[reusable].summary()

    with caplog.at_level(logging.INFO):
        result = run_tap(
            {**one_feed, "plan_only": True, "max_records_per_run": 1},
            streams=["export_rows"],
            state={},
        )

    assert result.records("export_rows") == []
    assert api.created_exports == [reusable]
    messages = [r.getMessage() for r in caplog.records]
    assert f"Plan: would reuse export {reusable} of feed {feed_id}; nothing to spend." in messages
    assert not any("would reserve" in m for m in messages)
    receipt = next(r for r in caplog.records if r.getMessage().startswith("Cost receipt"))
    assert receipt.__dict__["cost_receipt"]["exports_planned"] == [
        {
            "feed_id": feed_id,
            "start_date": on_api["start_date"],
            "end_date": on_api["end_date"],
            "reuse_export_id": reusable,
        }
    ]


def test_connection_test_creates_no_export(
    api: FakeContactBased, config: dict[str, t.Any], tmp_path: t.Any
) -> None:
    result = run_command(["--test"], tmp_path, config={**config, "enrichment_bundles": ["emails"]})

    assert result.returncode == 0, result.stderr
    assert api.created_exports == []
    assert sum(api.enrichment_ids_sent.values()) == 0
    assert api.credits["records_reserved"] == 0


def test_lookback_above_the_feed_cap_is_a_config_error(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    feed = api.feeds[0]
    too_long = feed["max_lookback_days"] + 1

    with pytest.raises(ConfigError, match=f"lookback_days is {too_long}"):
        run_tap(
            {**config, "feed_ids": [feed["feed_id"]], "lookback_days": too_long},
            streams=["export_rows"],
        )
    assert api.created_exports == []


def test_empty_feed_ids_emit_nothing(api: FakeContactBased, config: dict[str, t.Any]) -> None:
    result = run_tap({**config, "feed_ids": []}, streams=["export_rows", "exports", "feed_totals"])

    assert result.records("export_rows") == []
    assert api.created_exports == []


def test_discovery_types_the_columns_a_free_preview_shows(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    api.faults.extra_columns = ("buying_stage",)

    catalog = selected_catalog(config, ["export_rows"])
    records = run_tap(config, catalog=catalog).records("export_rows")

    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "export_rows")
    assert entry["schema"]["properties"]["buying_stage"] == {"type": ["string", "null"]}
    assert any(r["buying_stage"] for r in records)
    assert all("extra_columns" not in r for r in records)


def test_exports_and_feed_totals_streams_emit_what_the_api_serves(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    api.make_ready_export(api.feed_ids[0], 3)

    result = run_tap(config, streams=["exports", "feed_totals"])

    exports = result.records("exports")
    assert {e["export_id"] for e in exports} == set(api.exports)
    assert all(e["status"] == api.exports[e["export_id"]].status for e in exports)
    totals = result.records("feed_totals")
    for feed_id in config["feed_ids"]:
        days = {r["date"]: r["count"] for r in totals if r["feed_id"] == feed_id}
        assert len(days) == config["lookback_days"]
        for day, count in days.items():
            assert count == len(api.expected_rows(feed_id, day, day))


def test_the_catalog_says_export_rows_replicates_incrementally(config: dict[str, t.Any]) -> None:
    catalog = selected_catalog(config, ["export_rows"])

    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "export_rows")
    root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
    assert root["forced-replication-method"] == "INCREMENTAL"
    assert list(root["table-key-properties"]) == ["export_id", "export_row"]
