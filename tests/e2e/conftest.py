"""End-to-end fixtures: Meltano on this project, a real PostgreSQL, the local API.

The tap runs as Meltano launches it (a subprocess from `.meltano/extractors/`) and reaches
the local ContactBased API, which runs in this pytest process, over loopback. Settings go
through `TAP_CONTACTBASED_*` and `TARGET_*` environment variables, as a user's would.
"""

from __future__ import annotations

import itertools
import json
import re
import typing as t
from pathlib import Path

import pytest

from tests.conftest import ALL_STREAMS, API_KEY
from tests.e2e.meltano import Meltano, install, stale_plugins
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.fake_api import FakeContactBased

SCHEMA = "contactbased"  # default_target_schema of the loaders in meltano.yml
# The streams meltano.yml selects: each one becomes a table.
SELECTED_STREAMS = set(ALL_STREAMS)


DATABASE_NUMBERS = itertools.count(1)


@pytest.fixture(scope="session")
def meltano_plugins() -> None:
    """The project's plugins, installed once for all tests (scripts/setup usually did it)."""
    if stale_plugins():
        install()
    stale = stale_plugins()
    assert not stale, f"meltano install did not install these plugins: {stale}"


@pytest.fixture(scope="session")
def postgres_server() -> t.Iterator[PostgresServer]:
    """One PostgreSQL server for the session, on a free loopback port."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def warehouse(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> ConnectionInfo:
    """A fresh database for one test, named after it."""
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())
    return postgres_server.create_database(f"wh{next(DATABASE_NUMBERS)}_{name}"[:63])


def tap_env(api: FakeContactBased, **settings: t.Any) -> dict[str, str]:
    """TAP_CONTACTBASED_* variables pointing the tap at `api`, small and quick.

    Values that are not strings are written as JSON, as Meltano reads them.
    """
    values: dict[str, t.Any] = {
        "api_url": api.url,
        "api_key": API_KEY,
        "feed_ids": api.feed_ids[:2],
        "lookback_days": 3,
        "page_size": 1000,
        "request_timeout_seconds": 20,
        "export_timeout_seconds": 60,
        "export_stall_timeout_seconds": 60,
    }
    values.update(settings)
    return {
        f"TAP_CONTACTBASED_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
    }


def postgres_env(info: ConnectionInfo) -> dict[str, str]:
    """TARGET_POSTGRES_* variables for a database (trust auth: any password does)."""
    return {
        "TARGET_POSTGRES_HOST": info.host,
        "TARGET_POSTGRES_PORT": str(info.port),
        "TARGET_POSTGRES_USER": info.user,
        "TARGET_POSTGRES_PASSWORD": "trust-auth-ignores-it",
        "TARGET_POSTGRES_DATABASE": info.database,
    }


@pytest.fixture
def meltano(meltano_plugins: None, tmp_path: Path) -> Meltano:
    """Meltano with its own system database (and so its own state) for this test."""
    return Meltano.isolated(tmp_path / "meltano")


def landed_keys(info: ConnectionInfo, table: str = "export_rows") -> list[tuple[str, int]]:
    """(export_id, export_row) of every row of a table, duplicates included.

    None while the target has not created the table yet.
    """
    with info.connect() as connection:
        exists = connection.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()
        if exists is None or exists[0] is None:
            return []
        rows = connection.execute(f"SELECT export_id, export_row FROM {SCHEMA}.{table}")
        return [(str(export_id), t.cast("int", row)) for export_id, row in rows.fetchall()]


def tables_of(info: ConnectionInfo) -> set[str]:
    """Tables of the loaders' schema."""
    with info.connect() as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (SCHEMA,),
        ).fetchall()
    return {str(name) for (name,) in rows}
