"""Run the tap in-process or as a command and collect what it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_contactbased.tap import TapContactBased

REPO = Path(__file__).resolve().parent.parent
TAP_COMMAND = [sys.executable, "-m", "tap_contactbased"]
LAUNCHER = REPO / "bench" / "launch.py"  # runs a command, writes its own resource use


class CollectingWriter(MsgSpecWriter):
    """Keeps every message as the JSON a target would read."""

    def __init__(self) -> None:
        self.messages: list[dict[str, t.Any]] = []

    def write_message(self, message: t.Any) -> None:
        self.messages.append(msgspec.json.decode(bytes(self.format_message(message))))


@dataclass
class SyncResult:
    """The Singer messages of one run."""

    messages: list[dict[str, t.Any]] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    error: BaseException | None = None

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def streams(self) -> set[str]:
        return {m["stream"] for m in self.messages if m["type"] == "RECORD"}

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any] | None:
        return self.states[-1] if self.states else None

    def schema(self, stream: str) -> dict[str, t.Any]:
        return next(m for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream)

    def stdout_text(self) -> str:
        return "\n".join(json.dumps(m) for m in self.messages)


def selected_catalog(config: dict[str, t.Any], streams: t.Iterable[str]) -> dict[str, t.Any]:
    """The discovered catalog with only `streams` selected."""
    wanted = set(streams)
    catalog = TapContactBased(config=config, validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in wanted
    return catalog


def deselect_property(catalog: dict[str, t.Any], stream: str, name: str) -> None:
    """Deselect the property `name` of `stream` in `catalog`."""
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    for metadata in entry["metadata"]:
        if metadata["breadcrumb"] == ["properties", name]:
            metadata["metadata"]["selected"] = False


def run_tap(
    config: dict[str, t.Any],
    *,
    streams: t.Iterable[str] | None = None,
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
    raise_errors: bool = True,
) -> SyncResult:
    """Sync in this process.

    An exception propagates to the test, unless `raise_errors` is False: then the result
    holds it, with the messages written before it (what a target would have received).
    """
    if streams is not None:
        catalog = selected_catalog(config, streams)
    writer = CollectingWriter()
    tap = TapContactBased(config=config, state=state or {}, catalog=catalog, message_writer=writer)
    try:
        tap.sync_all()
    except Exception as exc:
        if raise_errors:
            raise
        return SyncResult(writer.messages, error=exc)
    return SyncResult(writer.messages)


def command_line(
    args: list[str],
    tmp_path: Path,
    *,
    config: dict[str, t.Any] | None = None,
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
    program: t.Sequence[str] = TAP_COMMAND,
) -> list[str]:
    """The `tap-contactbased` command line, its input files written under `tmp_path`."""
    command = [*program, *args]
    for flag, value in (("--config", config), ("--state", state), ("--catalog", catalog)):
        if value is not None:
            path = tmp_path / f"{flag.strip('-')}.json"
            path.write_text(json.dumps(value))
            command += [flag, str(path)]
    return command


def command_result(args: list[str], stdout: str, stderr: str, returncode: int) -> SyncResult:
    """What a run of the command wrote."""
    messages = []
    # Discovery prints a catalog and the probe a table: neither writes Singer messages.
    if "--discover" not in args and not any(a.startswith("--probe") for a in args):
        # Lines end in "\n" only: `splitlines` would also split at a U+2028 inside a value.
        messages = [json.loads(line) for line in stdout.split("\n") if line]
    return SyncResult(messages, stdout, stderr, returncode)


def run_command(
    args: list[str],
    tmp_path: Path,
    *,
    config: dict[str, t.Any] | None = None,
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    tap_command: t.Sequence[str] = TAP_COMMAND,
) -> SyncResult:
    """Run `tap-contactbased` (or `tap_command`) as a process, the way Meltano does."""
    command = command_line(
        args, tmp_path, config=config, state=state, catalog=catalog, program=tap_command
    )
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return command_result(args, completed.stdout, completed.stderr, completed.returncode)


def run_command_measured(
    args: list[str],
    tmp_path: Path,
    *,
    config: dict[str, t.Any],
    catalog: dict[str, t.Any] | None = None,
) -> tuple[SyncResult, int]:
    """Run the command as `run_command` does; also its peak RSS in bytes.

    Through the benchmark's launcher: a process this (large) test process spawned itself
    would count this one's memory in its own peak.
    """
    command = command_line(args, tmp_path, config=config, catalog=catalog)
    figures_path = tmp_path / "figures.json"
    completed = subprocess.run(
        [sys.executable, "-I", "-S", str(LAUNCHER), str(figures_path), *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    figures = json.loads(figures_path.read_text())
    result = command_result(args, completed.stdout, completed.stderr, figures["exit_code"])
    return result, int(figures["maxrss_kib"]) * 1024  # Linux counts ru_maxrss in KiB
