"""A throwaway PostgreSQL server for the end-to-end benchmark, and the CPU time it spends.

The server is the end-to-end tests' (tests/e2e/postgres.py: the installed binaries, a
temporary cluster, 127.0.0.1 only, fsync off). Its CPU time is read from /proc: the
postmaster's own and its reaped children's (backends that exited), plus every live child's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from bench.fake import BenchError
from tests.e2e.postgres import ConnectionInfo, PostgresServer, PostgresUnavailableError


def _proc_ticks(pid: int, *, with_children: bool) -> int:
    """Utime + stime (and cutime + cstime) of a process, in clock ticks; 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # Fields 14-17 of stat(5); index 0 here is field 3 (state).
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry.name))
    return found


class BenchPostgres:
    """The server, started on entry and removed on exit."""

    def __init__(self) -> None:
        """Prepare; nothing runs until `__enter__`."""
        self.server: PostgresServer | None = None
        self.postmaster = 0

    def __enter__(self) -> BenchPostgres:
        """Start the server."""
        try:
            self.server = PostgresServer().start()
        except PostgresUnavailableError as exc:
            raise BenchError(str(exc)) from exc
        pid_file = self.server.data_dir / "postmaster.pid"
        self.postmaster = int(pid_file.read_text().split()[0])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server and remove its files."""
        if self.server is not None:
            self.server.stop()

    def create_database(self, name: str) -> ConnectionInfo:
        """A new, empty database."""
        assert self.server is not None
        return self.server.create_database(name)

    def drop_database(self, info: ConnectionInfo) -> None:
        """Drop a database the benchmark has checked (they are large)."""
        assert self.server is not None
        admin = ConnectionInfo(info.host, info.port, info.user, "postgres")
        with admin.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{info.database}" WITH (FORCE)')

    def processes(self) -> set[int]:
        """The server's processes below the postmaster (background workers and backends)."""
        return set(_children(self.postmaster))

    def settle(self, baseline: set[int], timeout: float = 15.0) -> None:
        """Wait until the backends of the run have exited (at most `timeout` seconds).

        A backend's CPU time moves from its own counters to the postmaster's reaped-children
        counters when it exits; reading both while one exits would miss it.
        """
        deadline = time.monotonic() + timeout
        while self.processes() - baseline and time.monotonic() < deadline:
            time.sleep(0.02)

    def cpu_seconds(self) -> float:
        """CPU time the whole server has used so far (backends that exited included)."""
        ticks = _proc_ticks(self.postmaster, with_children=True)
        ticks += sum(_proc_ticks(c, with_children=False) for c in _children(self.postmaster))
        return ticks / os.sysconf("SC_CLK_TCK")
