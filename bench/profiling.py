"""Where the tap's time goes: cProfile of one sync, top functions per row."""

from __future__ import annotations

import pstats
import sys
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
PROFILE_TAP = Path(__file__).resolve().with_name("profile_tap.py")

# pstats keeps {(file, line, function): (primitive calls, calls, tottime, cumtime, callers)}.
FunctionKey = tuple[str, int, str]
Entry = tuple[int, int, float, float, object]


def profile_command(prof_path: Path, clock: str, tap_args: list[str]) -> list[str]:
    """Run the tap in one interpreter under cProfile, all threads, writing `prof_path`."""
    return [sys.executable, str(PROFILE_TAP), str(prof_path), clock, *tap_args]


def where(key: FunctionKey) -> str:
    """A short name of a profiled function: package path, line and name."""
    file, line, name = key
    if file == "~":
        return name  # a built-in, e.g. {method 'write' of '_io.BufferedWriter' objects}
    path = file.replace("\\", "/")
    if "/tap_contactbased/" in path:  # the work tree's or a --tap-src copy
        return f"tap_contactbased/{path.rsplit('/tap_contactbased/', 1)[1]}:{line}({name})"
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[1]
            break
    else:
        root = str(ROOT) + "/"
        path = path.removeprefix(root)
    return f"{path}:{line}({name})"


def _cumulative(item: tuple[FunctionKey, Entry]) -> float:
    return item[1][3]


def _own(item: tuple[FunctionKey, Entry]) -> float:
    return item[1][2]


def top_functions(prof_path: Path, rows: int, *, clock: str, limit: int = 30) -> str:
    """The `limit` functions with the most cumulative time, then with the most own time."""
    stats = pstats.Stats(str(prof_path))
    entries = cast("dict[FunctionKey, Entry]", getattr(stats, "stats"))  # noqa: B009
    total = max((entry[3] for entry in entries.values()), default=0.0)
    per_row = 1e6 / rows if rows else 0.0
    header = (
        f"{'calls':>11} {'own s':>8} {'cum s':>8} {'own µs/row':>10} {'cum µs/row':>10}  function"
    )
    parts = [
        f"profile {prof_path} — {rows:,} rows, {total:.2f} s profiled "
        f"({clock} time of all threads added up; profiling slows every call)"
    ]
    for title, seconds in (("cumulative time", _cumulative), ("own (total) time", _own)):
        ranked = sorted(entries.items(), key=seconds, reverse=True)[:limit]
        parts.append(f"\nTop {limit} by {title}:\n{header}")
        for key, (_primitive, calls, own, cum, _callers) in ranked:
            parts.append(
                f"{calls:>11,} {own:>8.2f} {cum:>8.2f} {own * per_row:>10.2f} "
                f"{cum * per_row:>10.2f}  {where(key)}"
            )
    return "\n".join(parts)
