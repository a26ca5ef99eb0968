"""Which test runs which code of the mutated modules, measured once on the unmutated tree.

Loaded as a pytest plugin (`-p tests.mutation.trace`) in one run of the selectable tests.
A trace function notes every function of the mutated modules that starts, and every line
of theirs that runs (in any thread);
tests that run the tap as a process are followed into it by a `sitecustomize` put on the
process's PYTHONPATH, which notes the same into a file named by the test. The plugin writes,
per test, how long it took and what it ran, and stops the mutation run if a test fails on
the unmutated tree.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

TARGETS_VARIABLE = "MUTATION_TRACE_TARGETS"  # the mutated modules' files, os.pathsep between
OUT_VARIABLE = "MUTATION_TRACE_OUT"  # where a test's processes note what they ran
REPORT_VARIABLE = "MUTATION_TRACE_REPORT"  # where the plugin writes its findings

# The sitecustomize of the processes a test starts: standard library only, notes each
# function and line of a mutated module once, flushed at once (a test may SIGKILL it).
SITECUSTOMIZE = """\
import os
import sys
import threading

def _start(targets, out):
    seen = set()
    sink = open(out, "a", encoding="utf-8")

    def note(file, line):
        if (file, line) not in seen:
            seen.add((file, line))
            sink.write(f"{file}\\t{line}\\n")
            sink.flush()

    def lines(frame, event, arg):
        if event == "line":
            note(frame.f_code.co_filename, frame.f_lineno)
        return lines

    def tracer(frame, event, arg):
        code = frame.f_code
        if code.co_filename in targets:
            note(code.co_filename, -code.co_firstlineno)
            return lines
        return None

    sys.settrace(tracer)
    threading.settrace(tracer)

_targets = os.environ.get("MUTATION_TRACE_TARGETS")
_out = os.environ.get("MUTATION_TRACE_OUT")
if _targets and _out:
    _start(frozenset(_targets.split(os.pathsep)), _out)
"""

# (file, line run), or (file, -first line) for the start of a function (a code object).
Hit = tuple[str, int]


class TracePlugin:
    """Notes, per test, its duration and the code of the mutated modules it ran."""

    def __init__(self, targets: frozenset[str], report: Path) -> None:
        """Trace the files `targets`; write the findings to `report`."""
        self._targets = targets
        self._report = report
        self._hits: set[Hit] = set()
        self._tests: dict[str, dict[str, t.Any]] = {}
        self._failed: list[str] = []
        self._out_dir = report.parent / "trace-out"
        self._out_dir.mkdir(parents=True, exist_ok=True)

    def _tracer(self, frame: FrameType, event: str, arg: t.Any) -> t.Any:
        code = frame.f_code
        if code.co_filename in self._targets:
            self._hits.add((code.co_filename, -code.co_firstlineno))
            return self._lines
        return None

    def _lines(self, frame: FrameType, event: str, arg: t.Any) -> t.Any:
        if event == "line":
            self._hits.add((frame.f_code.co_filename, frame.f_lineno))
        return self._lines

    def start(self) -> None:
        """Trace every thread from now on."""
        sys.settrace(self._tracer)
        threading.settrace(self._tracer)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        """Trace one test, its processes included."""
        out = self._out_dir / f"{len(self._tests)}.txt"
        out.unlink(missing_ok=True)
        self._hits = set()
        os.environ[OUT_VARIABLE] = str(out)
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        del os.environ[OUT_VARIABLE]
        hits = set(self._hits)
        if out.exists():
            for line in out.read_text(encoding="utf-8").splitlines():
                file, first_line = line.rsplit("\t", 1)
                hits.add((file, int(first_line)))
        self._tests[item.nodeid] = {"seconds": round(seconds, 4), "hits": sorted(hits)}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note a test that failed on the unmutated tree."""
        if report.failed:
            self._failed.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the findings, with the third-party modules the tests imported."""
        sys.settrace(None)
        threading.settrace(None)
        imported = sorted(
            name
            for name in list(sys.modules)
            if name.split(".")[0] not in {"tap_contactbased", "tests", "__main__", "conftest"}
        )
        findings = {"tests": self._tests, "failed": self._failed, "imported": imported}
        self._report.write_text(json.dumps(findings), encoding="utf-8")


def pytest_configure(config: pytest.Config) -> None:
    """Start tracing when the mutation run asked for it."""
    targets, report = os.environ.get(TARGETS_VARIABLE), os.environ.get(REPORT_VARIABLE)
    if targets and report:
        plugin = TracePlugin(frozenset(targets.split(os.pathsep)), Path(report))
        config.pluginmanager.register(plugin, "mutation-trace")
        plugin.start()
