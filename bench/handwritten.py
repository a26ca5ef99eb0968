"""The reference: a minimal hand-written client that emits the rows of one ready export.

`python -m bench.handwritten --api-url URL --export-id ID --mode csv|pages > rows.jsonl`,
with the key in CONTACTBASED_API_KEY. It does what the tap's export_rows stream must do
for each row, and nothing the tap could not also do: read the CSV (one streamed download)
or the pages, make a record with export_id, feed_id, export_row and every column (empty
values are null), type intent_score as a number and the bundle_* columns as JSON objects,
and write one Singer RECORD line per row to a buffered stdout. No state, no retries, no
schema: it is the floor the tap's per-row cost is compared with.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, cast

import orjson
import requests

DOWNLOAD_URL = "/intent/feeds/exports/download-url"
EXPORT_PAGE = "/intent/feeds/exports/page"
EXPORT_LIST = "/intent/feeds/exports/list"
TIMEOUT = 120


Pairs = Iterable[tuple[str, Any]]


def csv_rows(session: requests.Session, api_url: str, export_id: str) -> Iterator[Pairs]:
    """Rows of the export's full CSV, streamed, as (column, text) pairs."""
    answer = session.post(api_url + DOWNLOAD_URL, json={"export_id": export_id}, timeout=TIMEOUT)
    answer.raise_for_status()
    # The signed URL carries its own authorization: no API key goes to object storage.
    with requests.get(answer.json()["url"], stream=True, timeout=TIMEOUT) as response:
        response.raise_for_status()
        response.raw.decode_content = True
        text = io.TextIOWrapper(cast("BinaryIO", response.raw), encoding="utf-8", newline="")
        reader = csv.reader(text)
        header = next(reader)
        for values in reader:
            yield zip(header, values, strict=False)


def page_rows(
    session: requests.Session, api_url: str, export_id: str, total_pages: int
) -> Iterator[Pairs]:
    """Rows of the export, page after page, as (column, value) pairs."""
    for page in range(1, total_pages + 1):
        body = {"export_id": export_id, "page": page}
        response = session.post(api_url + EXPORT_PAGE, json=body, timeout=TIMEOUT)
        response.raise_for_status()
        for row in orjson.loads(response.content)["rows"]:
            yield row.items()


def write_records(rows: Iterable[Pairs], export_id: str, feed_id: str, out: BinaryIO) -> int:
    """Write one RECORD line per row; return the count."""
    count = 0
    bundles: list[str] | None = None
    for count, row in enumerate(rows, start=1):
        record: dict[str, Any] = {"export_id": export_id, "feed_id": feed_id, "export_row": count}
        for column, value in row:
            record[column] = value or None
        if bundles is None:
            bundles = [column for column in record if column.startswith("bundle_")]
        score = record.get("intent_score")
        if score is not None:
            record["intent_score"] = float(score)
        for column in bundles:
            text = record[column]
            if text is not None:
                record[column] = orjson.loads(text)
        message = {"type": "RECORD", "stream": "export_rows", "record": record}
        out.write(orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE))
    return count


def main(argv: list[str] | None = None) -> int:
    """Read one export and write its records to stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.handwritten", description=__doc__)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--export-id", required=True)
    parser.add_argument("--mode", choices=["csv", "pages"], default="csv")
    args = parser.parse_args(argv)
    api_url = args.api_url.rstrip("/")
    session = requests.Session()
    session.headers["X-API-Key"] = os.environ.get("CONTACTBASED_API_KEY", "cbk_test_key")
    listing = session.post(
        api_url + EXPORT_LIST, json={"export_ids": [args.export_id]}, timeout=TIMEOUT
    )
    listing.raise_for_status()
    summary = listing.json()["items"][0]
    if args.mode == "csv":
        rows: Iterable[Pairs] = csv_rows(session, api_url, args.export_id)
    else:
        rows = page_rows(session, api_url, args.export_id, int(summary["total_pages"]))
    out = sys.stdout.buffer  # a BufferedWriter: one write call per 8 KiB, not per line
    count = write_records(rows, args.export_id, str(summary["feed_id"]), out)
    out.flush()
    print(f"handwritten: {count} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
