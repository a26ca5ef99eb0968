"""A throwaway PostgreSQL server: the installed binaries, a temporary directory, loopback only.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` OS user
(through `runuser`); otherwise as the current user. Nothing here needs docker or a system
service: `initdb -A trust` makes a cluster that only 127.0.0.1 can reach.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_USER = "postgres"
START_TIMEOUT_SECONDS = 60


class PostgresUnavailableError(RuntimeError):
    """The server binaries are missing or the server did not start."""


def find_bin_dir() -> Path:
    """The directory of `initdb` and `pg_ctl`: $PG_BIN, Debian's newest, or the PATH."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in debian]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    msg = (
        "No PostgreSQL server binaries (initdb, pg_ctl) under $PG_BIN, "
        "/usr/lib/postgresql/*/bin or on PATH. Install them (scripts/test does: "
        "apt-get install postgresql) or set PG_BIN."
    )
    raise PostgresUnavailableError(msg)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ConnectionInfo:
    """Where the server listens and as whom to connect (no password: trust auth)."""

    host: str
    port: int
    user: str
    database: str

    @property
    def conninfo(self) -> str:
        """A libpq connection string."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new autocommit connection."""
        return psycopg.connect(self.conninfo, autocommit=True)


class PostgresServer:
    """One cluster in a temporary directory, started with `start()`, removed by `stop()`."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        """Prepare; nothing runs until `start()`."""
        self.bin_dir = bin_dir or find_bin_dir()
        self.as_other_user = os.geteuid() == 0
        self.os_user = SERVER_USER if self.as_other_user else pwd.getpwuid(os.geteuid()).pw_name
        self.root: Path | None = None
        self.port = 0

    @property
    def data_dir(self) -> Path:
        """The cluster's directory."""
        if self.root is None:
            raise RuntimeError("the server is not started")
        return self.root / "data"

    def _command(self, *args: str) -> list[str]:
        if self.as_other_user:
            return ["runuser", "-u", SERVER_USER, "--", *args]
        return list(args)

    def _run(self, *args: str) -> None:
        completed = subprocess.run(
            self._command(*args), capture_output=True, text=True, check=False, timeout=120
        )
        if completed.returncode != 0:
            msg = f"{' '.join(args)} failed ({completed.returncode}):\n{completed.stderr}"
            raise PostgresUnavailableError(msg)

    def start(self) -> PostgresServer:
        """initdb, then start on a free loopback port; the socket stays in the directory."""
        self.root = Path(tempfile.mkdtemp(prefix="contactbased-pg-"))
        if self.as_other_user:
            shutil.chown(self.root, SERVER_USER)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            SERVER_USER,
            "-E",
            "UTF8",
            "--no-sync",
        )
        last_error: Exception | None = None
        for _ in range(3):  # the free port may be taken between the probe and the start
            self.port = free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-o",
                    options,
                    "-l",
                    str(self.root / "server.log"),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_SECONDS),
                    "start",
                )
            except PostgresUnavailableError as exc:
                last_error = exc
                continue
            return self
        log = self.root / "server.log"
        detail = log.read_text() if log.exists() else ""
        msg = f"PostgreSQL did not start: {last_error}\n{detail}"
        raise PostgresUnavailableError(msg)

    def create_database(self, name: str) -> ConnectionInfo:
        """Create a database and return how to reach it."""
        admin = ConnectionInfo("127.0.0.1", self.port, SERVER_USER, "postgres")
        with admin.connect() as connection:  # pg_ctl -w returned: the server accepts them
            connection.execute(f'CREATE DATABASE "{name}"')
        return ConnectionInfo("127.0.0.1", self.port, SERVER_USER, name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self.root is None:
            return
        with contextlib.suppress(PostgresUnavailableError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
