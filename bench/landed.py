"""What landed: a row count and an order-free checksum, the same for every warehouse.

Each row contributes a hash of a few columns that every path keeps, normalised to one form
(text as is, the score in hundredths, the date and the timestamp in ISO form as UTC, the
e-mail bundle as sorted JSON); the checksum is the sum of those hashes modulo 2**64. The
export's CSV gives the expected figures; every warehouse table must match them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg

from tests.e2e.postgres import ConnectionInfo

COLUMNS = (
    "contact_id",
    "company_name",
    "intent_score",
    "signal_date",
    "first_seen",
    "bundle_emails",
)
SCHEMA = "contactbased"
MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Landed:
    """Rows and checksum of one table, plus what the loader left around it."""

    rows: int
    checksum: str
    sdc_null_rows: int | None = None  # rows whose _sdc_received_at is NULL (PostgreSQL)


def _score(value: object) -> int | None:
    if value is None or value == "":
        return None
    return round(Decimal(str(value)) * 100)


def _day(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _instant(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat()


def _json(value: object) -> str | None:
    if isinstance(value, str):
        value = json.loads(value) if value else None
    return None if value is None else json.dumps(value, sort_keys=True)


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


NORMALISE = (_text, _text, _score, _day, _instant, _json)


def checksum(rows: Iterable[Sequence[object]]) -> Landed:
    """Count and checksum of rows holding COLUMNS in that order."""
    total, count = 0, 0
    for row in rows:
        values = tuple(f(v) for f, v in zip(NORMALISE, row, strict=True))
        digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
        total = (total + int.from_bytes(digest, "big")) & MASK
        count += 1
    return Landed(count, f"{total:016x}")


def from_csv(body: bytes) -> Landed:
    """Expected figures, from the export's CSV."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
    return checksum([row[name] for name in COLUMNS] for row in reader)


def from_postgres(info: ConnectionInfo, table: str, *, schema: str | None = SCHEMA) -> Landed:
    """Figures of a PostgreSQL table (and how many rows lack their load timestamps)."""
    name = f'"{schema}"."{table}"' if schema else f'"{table}"'
    selected = ", ".join(f'"{column}"' for column in COLUMNS)
    with psycopg.connect(info.conninfo) as connection:
        found = checksum(connection.execute(f"SELECT {selected} FROM {name}"))
        has_sdc = connection.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s AND column_name = '_sdc_received_at'",
            (schema or "public", table),
        ).fetchone()
        nulls = None
        if has_sdc:
            answer = connection.execute(
                f"SELECT count(*) FROM {name} WHERE _sdc_received_at IS NULL"
            ).fetchone()
            nulls = int(answer[0]) if answer else None
    return Landed(found.rows, found.checksum, nulls)


def from_duckdb(path: Path, table: str) -> Landed:
    """Figures of a DuckDB table."""
    selected = ", ".join(f'"{column}"' for column in COLUMNS)
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(f'SELECT {selected} FROM {SCHEMA}."{table}"').fetchall()
    return checksum(rows)
