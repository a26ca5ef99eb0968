"""Print what landed in the demo's DuckDB warehouse and what the last run added.

`python scripts/warehouse_report.py WAREHOUSE --counts FILE --title TEXT`: FILE keeps the
counts of the previous report (it is read, then rewritten), so each report can say how many
rows the run since the previous one added, table by table and, for export_rows, day by day.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t
from pathlib import Path

import duckdb

SCHEMA = "contactbased"
SAMPLE_COLUMNS = ("signal_date", "company_name", "topic", "intent_score", "contact_id")


def counts_of(connection: duckdb.DuckDBPyConnection) -> dict[str, t.Any]:
    """Rows per table, and export rows per signal_date."""
    tables = [
        str(name)
        for (name,) in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "ORDER BY table_name",
            [SCHEMA],
        ).fetchall()
    ]
    # Table names come from the catalog, the schema is a constant: nothing to inject.
    rows = {
        table: int(connection.execute(f'SELECT count(*) FROM {SCHEMA}."{table}"').fetchall()[0][0])  # noqa: S608
        for table in tables
    }
    days: dict[str, int] = {}
    if "export_rows" in rows:
        days = {
            str(day): int(count)
            for day, count in connection.execute(
                f"SELECT signal_date, count(*) FROM {SCHEMA}.export_rows GROUP BY 1 ORDER BY 1"  # noqa: S608
            ).fetchall()
        }
    return {"tables": rows, "export_rows_by_day": days}


def print_table(header: t.Sequence[str], rows: t.Iterable[t.Sequence[t.Any]]) -> None:
    """A plain text table."""
    text = [[str(h) for h in header], *[["" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    for number, row in enumerate(text):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  " + "  ".join("-" * width for width in widths))


def main(argv: t.Sequence[str] | None = None) -> int:
    """Print the report; 1 when the warehouse has no export rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--counts", type=Path, required=True)
    parser.add_argument("--title", required=True)
    args = parser.parse_args(argv)

    previous = json.loads(args.counts.read_text()) if args.counts.exists() else {}
    with duckdb.connect(str(args.warehouse), read_only=True) as connection:
        now = counts_of(connection)
        sample = connection.execute(
            f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM {SCHEMA}.export_rows "  # noqa: S608
            "ORDER BY signal_date DESC, export_id, export_row LIMIT 4"
        ).fetchall()
    args.counts.write_text(json.dumps(now, indent=2))

    before_tables = previous.get("tables", {})
    print(f"\n{args.title}: {args.warehouse}, schema {SCHEMA}")
    print_table(
        ("table", "rows", "added by this run"),
        (
            (table, count, f"+{count - before_tables.get(table, 0)}")
            for table, count in now["tables"].items()
        ),
    )
    before_days = previous.get("export_rows_by_day", {})
    added = {
        day: count - before_days.get(day, 0)
        for day, count in now["export_rows_by_day"].items()
        if count != before_days.get(day, 0)
    }
    total = sum(added.values())
    days = ", ".join(f"{day} (+{count})" for day, count in added.items()) or "none"
    print(f"\n  export_rows added by this run: {total}, by signal_date: {days}")
    print("\n  A few export rows, newest first:")
    print_table(SAMPLE_COLUMNS, sample)
    return 0 if now["tables"].get("export_rows") else 1


if __name__ == "__main__":
    sys.exit(main())
