"""Kill the tap with SIGKILL mid-sync, restart it from the last state it emitted, repeat.

What the target received from every attempt is kept: a real target would have loaded it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.singer_run import REPO, TAP_COMMAND

# Decides, from the messages read so far, whether to kill now.
KillPoint = Callable[[list[dict[str, t.Any]]], bool]


@dataclass
class Attempt:
    messages: list[dict[str, t.Any]]
    killed: bool
    returncode: int


@dataclass
class Campaign:
    """Every attempt of one sync, killed and restarted until it finished."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def messages(self) -> list[dict[str, t.Any]]:
        return [m for a in self.attempts for m in a.messages]

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def kills(self) -> int:
        return sum(a.killed for a in self.attempts)


def run_once(
    config: dict[str, t.Any],
    catalog: dict[str, t.Any],
    state: dict[str, t.Any] | None,
    kill_point: KillPoint | None,
    workdir: Path,
) -> Attempt:
    """One run of the tap as a process, killed when `kill_point` says so."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, value in (("config", config), ("catalog", catalog), ("state", state or {})):
        paths[name] = workdir / f"{name}.json"
        paths[name].write_text(json.dumps(value))
    command = [*TAP_COMMAND, "--config", str(paths["config"]), "--catalog", str(paths["catalog"])]
    command += ["--state", str(paths["state"])]
    with (
        (workdir / "stderr.log").open("ab") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO) as process,
    ):
        assert process.stdout is not None
        messages: list[dict[str, t.Any]] = []
        killed = False
        for line in process.stdout:
            if killed and not line.endswith(b"\n"):
                break  # the line the kill cut short: no target could read it either
            messages.append(json.loads(line))
            if kill_point is not None and not killed and kill_point(messages):
                os.kill(process.pid, signal.SIGKILL)
                killed = True
        returncode = process.wait(timeout=120)
    return Attempt(messages, killed, returncode)


def last_state(messages: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return states[-1] if states else None


def run_with_kills(
    config: dict[str, t.Any],
    catalog: dict[str, t.Any],
    kill_points: list[KillPoint],
    workdir: Path,
    *,
    max_attempts: int = 50,
) -> Campaign:
    """Apply each kill point to a fresh attempt, resuming from the last state; then finish."""
    campaign = Campaign()
    state: dict[str, t.Any] | None = None
    pending = list(kill_points)
    while len(campaign.attempts) < max_attempts:
        point = pending.pop(0) if pending else None
        attempt = run_once(config, catalog, state, point, workdir)
        campaign.attempts.append(attempt)
        state = last_state(attempt.messages) or state
        if not attempt.killed:
            assert attempt.returncode == 0, (workdir / "stderr.log").read_text()[-3000:]
            if not pending:
                return campaign
    raise AssertionError("the sync did not finish")


def after_messages(count: int) -> KillPoint:
    """Kill once `count` messages have been read."""
    return lambda messages: len(messages) >= count


def while_building() -> KillPoint:
    """Kill right after an export is put in flight, before any of its rows."""

    def point(messages: list[dict[str, t.Any]]) -> bool:
        last = messages[-1]
        return last["type"] == "STATE" and '"rows_done": 0' in json.dumps(last["value"])

    return point


def between_pages() -> KillPoint:
    """Kill right after a page was confirmed in the state."""

    def point(messages: list[dict[str, t.Any]]) -> bool:
        last = messages[-1]
        return last["type"] == "STATE" and any(f["rows_done"] > 0 for f in flights(last))

    return point


def since_last_state(messages: list[dict[str, t.Any]]) -> tuple[int, dict[str, t.Any] | None]:
    """Export rows read since the last STATE message, and that message (None: none yet)."""
    seen = 0
    for message in reversed(messages):
        if message["type"] == "STATE":
            return seen, message
        if message["type"] == "RECORD" and message["stream"] == "export_rows":
            seen += 1
    return seen, None


def mid_page(records_after_state: int) -> KillPoint:
    """Kill `records_after_state` records after a confirmed page."""

    def point(messages: list[dict[str, t.Any]]) -> bool:
        seen, state = since_last_state(messages)
        return state is not None and seen >= records_after_state and between_pages()([state])

    return point


def flights(message: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The exports a STATE message has in flight."""
    partitions = message["value"].get("bookmarks", {}).get("export_rows", {}).get("partitions", [])
    return [p["in_flight"] for p in partitions if p.get("in_flight")]


def all_building(feeds: int) -> KillPoint:
    """Kill once the exports of `feeds` feeds are in flight and none has a row confirmed."""

    def point(messages: list[dict[str, t.Any]]) -> bool:
        last = messages[-1]
        if last["type"] != "STATE":
            return False
        in_flight = flights(last)
        return len(in_flight) == feeds and all(f["rows_done"] == 0 for f in in_flight)

    return point


def while_reading_with_others_in_flight(records_after_state: int) -> KillPoint:
    """Kill in the middle of an export's rows while other exports are in flight too."""

    def point(messages: list[dict[str, t.Any]]) -> bool:
        seen, state = since_last_state(messages)
        return state is not None and seen >= records_after_state and len(flights(state)) >= 2

    return point
