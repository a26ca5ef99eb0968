"""The README's first command: scripts/demo, ending with the dbt models built on DuckDB.

The demo runs as a user runs it (its own local API, two days, `meltano invoke dbt-duckdb
build`), writing into a temporary folder. Its models are then checked against the raw
tables of the same file, counted here in Python: the same SQL as on PostgreSQL, on DuckDB.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

import duckdb

from tests.e2e.meltano import ISOLATED_PREFIXES, REPO

MODELS = (
    "contactbased__signals",
    "contactbased__latest_snapshot",
    "contactbased__credit_usage_daily",
)
SIGNAL_PARTS = "feed_id, signal_date, contact_id, domain, topic, first_seen, last_seen"


def one(connection: duckdb.DuckDBPyConnection, sql: str) -> t.Any:
    row = connection.execute(sql).fetchone()
    assert row is not None, sql
    return row[0]


def test_the_demo_builds_and_tests_the_dbt_models_on_its_duckdb_warehouse(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith((*ISOLATED_PREFIXES, "DBT_"))}
    env["CONTACTBASED_DEMO_OUTPUT"] = str(tmp_path)
    demo = subprocess.run(
        ["bash", "scripts/demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "analytics.contactbased__signals" in demo.stdout
    results = json.loads((tmp_path / "demo" / "dbt-target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in results["results"]}
    assert sum(uid.startswith("test.") for uid in statuses) >= 30
    assert set(statuses.values()) <= {"success", "pass"}, statuses

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        raw_keys = one(
            db, "SELECT count(DISTINCT (export_id, export_row)) FROM contactbased.export_rows"
        )
        assert raw_keys > 0
        assert one(db, "SELECT count(*) FROM analytics.stg_contactbased__export_rows") == raw_keys
        signals = one(db, f"SELECT count(DISTINCT ({SIGNAL_PARTS})) FROM contactbased.export_rows")
        assert one(db, "SELECT count(*) FROM analytics.contactbased__signals") == signals
        # Incremental runs: the latest "snapshot" is each feed's newest export, the last day.
        newest = """
            SELECT count(*) FROM contactbased.export_rows r WHERE r.export_id IN (
                SELECT arg_max(export_id, created_at) FROM contactbased.exports
                WHERE export_id IN (SELECT export_id FROM contactbased.export_rows)
                GROUP BY feed_id)
        """
        assert one(db, "SELECT count(*) FROM analytics.contactbased__latest_snapshot") == one(
            db, newest
        )
        days = one(db, "SELECT count(*) FROM contactbased.credits")
        assert days == 2, "a reading of the credit pool on each of the demo's two days"
        usage = db.execute(
            "SELECT records_credits_used, records_used "
            "FROM analytics.contactbased__credit_usage_daily "
            "WHERE records_used IS NOT NULL ORDER BY usage_date"
        ).fetchall()
        assert usage[0][0] is None
        assert usage[1][0] == usage[1][1] - usage[0][1] > 0
        enriched = one(db, "SELECT count(*) FROM contactbased.enrichment")
        used = one(
            db,
            "SELECT sum(enrichment_credits_used) FROM analytics.contactbased__credit_usage_daily",
        )
        assert used == enriched > 0
