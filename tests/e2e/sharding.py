"""Sharded Meltano runs: directories that stand in for machines, one shared system database.

A "machine" is a directory holding a copy of `meltano.yml` and a `.meltano/` whose
`extractors/` and `loaders/` link to the plugins installed in this repository. What Meltano
writes while it runs (`.meltano/run/`: each run's config and catalog; logs; `output/`) is
the directory's own, as it would be on another machine; the state is not: it lives in the
PostgreSQL system database that every directory's `MELTANO_DATABASE_URI` names.

Why copies and not `git clone` + `meltano install` per directory: an install costs about
25 s per directory and reaches the package registry, and it would prove that the project
installs (scripts/setup does that), not that shards share their state. What the copies
give up is independence of code: every directory runs the same installed plugins,
including the editable tap of this work tree, as machines built from one image would.
"""

from __future__ import annotations

import json
import shutil
import typing as t
from pathlib import Path

from tests.e2e.meltano import MELTANO_YML, REPO
from tests.e2e.postgres import ConnectionInfo

PIPELINE = "tap-contactbased-to-target-postgres"


def machine(root: Path, name: str) -> Path:
    """A project directory standing in for another machine, sharing the installed plugins."""
    project = root / name
    (project / ".meltano").mkdir(parents=True)
    shutil.copy2(MELTANO_YML, project / "meltano.yml")
    for kind in ("extractors", "loaders"):
        (project / ".meltano" / kind).symlink_to(REPO / ".meltano" / kind, target_is_directory=True)
    return project


def database_uri(info: ConnectionInfo) -> str:
    """MELTANO_DATABASE_URI of a PostgreSQL database, through psycopg 3 (Meltano's env has it)."""
    return f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{info.database}"


def state_id(suffix: str, environment: str = "local") -> str:
    """The state id of a shard's runs: `<environment>:<pipeline>:<suffix>`."""
    return f"{environment}:{PIPELINE}:{suffix}"


def shared_states(info: ConnectionInfo) -> dict[str, dict[str, t.Any]]:
    """Every completed state in a Meltano system database, by state id.

    Read with SQL rather than `meltano state get` (4 s of CPU each): the `state` table
    of Meltano 4 holds the singer state as JSON text in `completed_state`.
    """
    with info.connect() as connection:
        rows = connection.execute("SELECT state_id, completed_state FROM state").fetchall()
    states = {}
    for state_id_, completed in rows:
        parsed = json.loads(str(completed)) if completed else {}
        states[str(state_id_)] = parsed.get("singer_state", {})
    return states


def export_rows_bookmarks(state: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """The export_rows partition states of a singer state, by feed id."""
    partitions = state.get("bookmarks", {}).get("export_rows", {}).get("partitions", [])
    return {str(p["context"]["feed_id"]): p for p in partitions}
