"""Run Meltano on this repository's project, isolated per test.

Every test gets its own Meltano system database (so its own state), its own logs, and an
environment cleared of any TAP_CONTACTBASED_*, TARGET_* or MELTANO_* variable the
developer may have set. The plugins installed under `.meltano/` are shared by all tests,
also by the project directories that stand in for other machines (tests/e2e/sharding.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MELTANO_YML = REPO / "meltano.yml"
# The tap's plugin definition for other Meltano projects (`meltano add --from-ref`).
PLUGIN_DEFINITION = REPO / "plugin" / "tap-contactbased.yml"
MELTANO = str(Path(sys.executable).with_name("meltano"))
RUN_TIMEOUT_SECONDS = 300
ISOLATED_PREFIXES = ("TAP_CONTACTBASED_", "TARGET_", "MELTANO_")


def project() -> dict[str, t.Any]:
    """meltano.yml, parsed."""
    parsed: dict[str, t.Any] = yaml.safe_load(MELTANO_YML.read_text())
    return parsed


def plugin(plugin_type: str, name: str) -> dict[str, t.Any]:
    """One plugin's definition in meltano.yml."""
    for entry in project()["plugins"][plugin_type]:
        if entry["name"] == name:
            return dict(entry)
    msg = f"meltano.yml defines no {plugin_type} named {name}"
    raise LookupError(msg)


def stale_plugins() -> list[str]:
    """Plugins of meltano.yml that `meltano install` has to (re)install.

    A plugin is current when its executable exists and its venv's fingerprint matches the
    pip_url (Meltano's own fingerprint function), and, for the editable tap, when its venv
    is newer than pyproject.toml (its dependencies).
    """
    from meltano.core.venv_service import fingerprint  # noqa: PLC0415 (dev-only import)

    stale = []
    for plugin_type in ("extractors", "loaders", "utilities"):
        for entry in project()["plugins"].get(plugin_type, []):
            venv = REPO / ".meltano" / plugin_type / entry["name"] / "venv"
            executable = venv / "bin" / entry.get("executable", entry["name"])
            marker = venv / ".meltano_plugin_fingerprint"
            current = (
                executable.exists()
                and marker.exists()
                and marker.read_text() == fingerprint(shlex.split(entry["pip_url"]))
            )
            if current and entry["pip_url"].startswith("-e"):
                current = marker.stat().st_mtime >= (REPO / "pyproject.toml").stat().st_mtime
            if not current:
                stale.append(entry["name"])
    return stale


def base_env(database_uri: str) -> dict[str, str]:
    """This process's environment without Meltano and plugin settings, plus isolation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    env.update(
        MELTANO_DATABASE_URI=database_uri,
        MELTANO_ENVIRONMENT="local",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        NO_COLOR="1",
    )
    return env


def install() -> None:
    """`meltano install` (all plugins of meltano.yml), in a throwaway system database."""
    completed = subprocess.run(
        [MELTANO, "install"],
        cwd=REPO,
        env=base_env("sqlite:///" + str(REPO / ".meltano" / "meltano.db")),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        msg = f"meltano install failed ({completed.returncode}):\n{completed.stderr[-5000:]}"
        raise RuntimeError(msg)


@dataclass
class Result:
    """A finished Meltano command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    log: str  # stderr: Meltano's and the plugins' log lines

    def tail(self, lines: int = 60) -> str:
        """The end of the log, for assertion messages."""
        return "\n".join(self.log.splitlines()[-lines:])


@dataclass
class Meltano:
    """Meltano commands on the repository's project with a per-test system DB and env."""

    work_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    project: Path = REPO  # where the commands run: meltano.yml and .meltano/

    @classmethod
    def isolated(cls, work_dir: Path, **env: str) -> Meltano:
        """A project view whose state lives in `work_dir/meltano.db`."""
        return cls.shared(REPO, work_dir, f"sqlite:///{work_dir / 'meltano.db'}", **env)

    @classmethod
    def shared(cls, project: Path, work_dir: Path, database_uri: str, **env: str) -> Meltano:
        """Commands in the project directory `project`, on the system database `database_uri`."""
        work_dir.mkdir(parents=True, exist_ok=True)
        merged = base_env(database_uri)
        merged.update(env)
        return cls(work_dir, merged, project=project)

    def set(self, **env: str) -> None:
        """Set environment variables for the next commands."""
        self.env.update(env)

    def _log_paths(self, args: tuple[str, ...]) -> tuple[Path, Path]:
        self.runs += 1
        words = "-".join(a for a in args if not a.startswith("-"))
        stem = f"{self.runs:02d}-{re.sub(r'[^A-Za-z0-9_.:-]+', '_', words)[:60]}"
        return self.work_dir / f"{stem}.out", self.work_dir / f"{stem}.log"

    def start(self, *args: str, stdin: Path | None = None) -> Running:
        """Start a command in its own process group, reading `stdin`; see `Running`."""
        out_path, log_path = self._log_paths(args)
        with (
            out_path.open("wb") as out,
            log_path.open("wb") as log,
            stdin.open("rb") if stdin else open(os.devnull, "rb") as source,
        ):
            process = subprocess.Popen(
                [MELTANO, *args],
                cwd=self.project,
                env=self.env,
                stdin=source,
                stdout=out,
                stderr=log,
                start_new_session=True,
            )
        return Running(args, process, out_path, log_path)

    def __call__(self, *args: str, check: bool = True, stdin: Path | None = None) -> Result:
        """Run a command to its end; with `check`, fail the test when it fails."""
        result = self.start(*args, stdin=stdin).wait()
        if check and result.returncode != 0:
            msg = f"meltano {' '.join(args)} exited {result.returncode}:\n{result.tail()}"
            raise AssertionError(msg)
        return result

    def state(self, state_id: str) -> dict[str, t.Any]:
        """The state Meltano keeps for a state id (empty when none)."""
        result = self("state", "get", state_id, check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return {}
        parsed: dict[str, t.Any] = json.loads(result.stdout)
        return parsed


@dataclass
class Running:
    """A Meltano command running in its own process group."""

    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    out_path: Path
    log_path: Path

    def __enter__(self) -> Running:
        """Use as a context manager: whatever happens, nothing is left running."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Kill the group if the command is still running."""
        if self.process.poll() is None:
            self.kill_group()
        self.process.wait()

    def wait(self, timeout: float = RUN_TIMEOUT_SECONDS) -> Result:
        """Wait for the end; on timeout kill the whole group and fail."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            self.process.wait()
            msg = f"meltano {' '.join(self.args)} did not end within {timeout}s"
            raise AssertionError(msg) from None
        return Result(
            self.args,
            self.process.returncode,
            self.out_path.read_text(errors="replace"),
            self.log_path.read_text(errors="replace"),
        )

    def kill_group(self) -> None:
        """SIGKILL Meltano and every plugin it started (they share its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def descendants(self) -> list[int]:
        """Pids of the processes below Meltano, from /proc."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def find_child(self, *needles: str, exclude: str | None = None) -> int | None:
        """A process below Meltano whose command line holds every needle."""
        for pid in self.descendants():
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            words = raw.decode(errors="replace").split("\0")
            line = " ".join(words)
            if all(n in line for n in needles) and (exclude is None or exclude not in words):
                return pid
        return None


def wait_for(
    condition: t.Callable[[], t.Any], what: str, timeout: float = 60, every: float = 0.02
) -> t.Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(every)
