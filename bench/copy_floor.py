"""The floor: an export's CSV fetched and loaded with `COPY ... FROM STDIN`, by hand.

`python -m bench.copy_floor --api-url URL --export-id ID --conninfo DSN --table T`, with
the key in CONTACTBASED_API_KEY. It asks for the export's download URL, creates a table
typed like target-postgres's (numbers NUMERIC, dates DATE, timestamps TIMESTAMP, bundle
columns JSONB, the rest TEXT) and streams the response body into COPY unchanged: no parsing
in Python at all, so what it costs is the network, the server's CSV parser and the writes.
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg
import requests
from psycopg import sql

DOWNLOAD_URL = "/intent/feeds/exports/download-url"
TYPES = {
    "intent_score": "numeric",
    "signal_date": "date",
    "first_seen": "timestamp",
    "last_seen": "timestamp",
}
CHUNK = 1 << 16
TIMEOUT = 120


def column_type(name: str) -> str:
    """The type target-postgres gives the tap's column of that name."""
    return "jsonb" if name.startswith("bundle_") else TYPES.get(name, "text")


def main(argv: list[str] | None = None) -> int:
    """Fetch the CSV and COPY it (the benchmark counts what landed)."""
    parser = argparse.ArgumentParser(prog="python -m bench.copy_floor", description=__doc__)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--export-id", required=True)
    parser.add_argument("--conninfo", required=True)
    parser.add_argument("--table", default="export_rows_floor")
    args = parser.parse_args(argv)
    headers = {"X-API-Key": os.environ.get("CONTACTBASED_API_KEY", "cbk_test_key")}
    answer = requests.post(
        args.api_url.rstrip("/") + DOWNLOAD_URL,
        json={"export_id": args.export_id},
        headers=headers,
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    with (
        requests.get(answer.json()["url"], stream=True, timeout=TIMEOUT) as response,
        psycopg.connect(args.conninfo) as connection,
    ):
        response.raise_for_status()
        chunks = response.iter_content(CHUNK)
        first = next(chunks)
        header = first.split(b"\n", 1)[0].decode().strip().split(",")
        table = sql.Identifier(args.table)
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(column_type(name)))
            for name in header
        )
        connection.execute(sql.SQL("CREATE TABLE {} ({})").format(table, columns))
        copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(table)
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.write(first)
            for chunk in chunks:
                copy.write(chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
