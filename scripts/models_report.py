"""Print the dbt models the demo built on its DuckDB warehouse.

`python scripts/models_report.py WAREHOUSE`: the signals per feed and day
(`contactbased__signals`) and the credits used per day (`contactbased__credit_usage_daily`),
from the `analytics` schema where the dbt-duckdb utility builds them.
"""

from __future__ import annotations

import argparse
import sys
import typing as t
from pathlib import Path

import duckdb

from scripts.warehouse_report import print_table

MODELS = "analytics"


def main(argv: t.Sequence[str] | None = None) -> int:
    """Print two models; 1 when the signals model is empty."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("warehouse", type=Path)
    args = parser.parse_args(argv)
    with duckdb.connect(str(args.warehouse), read_only=True) as connection:
        signals = connection.execute(
            "SELECT feed_name, signal_date, count(*), sum(times_delivered) "  # noqa: S608
            f"FROM {MODELS}.contactbased__signals GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        usage = connection.execute(
            "SELECT usage_date, records_credits_used, enrichment_credits_used, "  # noqa: S608
            f"records_remaining FROM {MODELS}.contactbased__credit_usage_daily ORDER BY 1"
        ).fetchall()
    print(f"\n{MODELS}.contactbased__signals: every delivered signal once, per feed and day")
    print_table(("feed", "signal_date", "signals", "deliveries"), signals)
    print(f"\n{MODELS}.contactbased__credit_usage_daily")
    print_table(("day", "records credits", "enrichment credits", "records left"), usage)
    return 0 if signals else 1


if __name__ == "__main__":
    sys.exit(main())
