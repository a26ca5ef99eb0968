"""The mutation run: each mutant in a copy of the repository, its tests stopped at a failure.

1. Copies of the repository (one per parallel job) under .work/mutation: the files git
   knows, tracked or new, as they are in the working tree.
2. The selectable tests run once on a copy, traced (`tests.mutation.trace`): what each one
   ran, and how long it took. The result is kept until a file of the package or the tests
   changes.
3. Each mutant is written into a copy, and the tests that ran its function (or, for code
   outside any function, its module) run in a process forked from this one, which has
   already imported the test dependencies: fastest first, stopped at the first failure,
   within a timeout. Tests that start the tap as a process run it from the copy, so they see
   the mutant too.
4. Killed (a test failed), timeout (counted as killed: the tests would hang), survived (every
   test passed) or uncovered (no test runs that code: a survivor too).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from tests.mutation import config
from tests.mutation.mutants import FUNCTION, LINE, Mutant, apply, function_spans, references
from tests.mutation.trace import (
    OUT_VARIABLE,
    REPORT_VARIABLE,
    SITECUSTOMIZE,
    TARGETS_VARIABLE,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Sequence

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".work" / "mutation"
KILLED, TIMEOUT, SURVIVED, UNCOVERED, ERROR = "killed", "timeout", "survived", "uncovered", "error"
POLL_SECONDS = 0.02
TEST_TIMEOUT_EXIT = 86  # a mutant's process ends with it when one test ran past its budget


@dataclass
class Outcome:
    """What became of one mutant."""

    mutant: Mutant
    status: str
    seconds: float = 0.0
    tests: int = 0  # tests chosen for it
    killed_by: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, t.Any]:
        """The outcome as the results file holds it."""
        m = self.mutant
        return {
            "id": m.ident,
            "module": m.module,
            "key": m.key,
            "function": m.function,
            "operator": m.operator,
            "line": m.line,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "tests": self.tests,
            "killed_by": self.killed_by,
            "detail": self.detail,
        }


@dataclass
class Trace:
    """What each selectable test ran on the unmutated tree, and how long it took."""

    seconds: dict[str, float]  # nodeid -> seconds
    functions: dict[str, set[str]]  # "module | function" -> nodeids
    modules: dict[str, set[str]]  # module -> nodeids of tests that ran any of its code
    lines: dict[tuple[str, int], set[str]]  # (module, line) -> nodeids of tests that ran it
    imported: list[str]
    took: float = 0.0
    reused: bool = False
    key: str = ""  # the fingerprint of the tree it was made on
    # (nodeid, module) -> the lines of the module the test ran
    signatures: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)
    # A name -> "module | function" of the functions of mutated modules that use it.
    used_by: dict[str, set[str]] = field(default_factory=dict)
    # Names the package's other modules mention: what they do with them is not traced.
    foreign: frozenset[str] = frozenset()

    def tests_for(self, mutant: Mutant, *, every_variant: bool = False) -> list[str]:
        """The tests that ran the mutated code, fastest first.

        Of the variants of one parametrized test that ran the very same lines of the mutated
        module, only the fastest is chosen unless `every_variant`: they drive the module the
        same way and check it with the same assertions.
        """
        chosen = self._choose(mutant)
        ordered = sorted(chosen, key=lambda nodeid: (self.seconds[nodeid], nodeid))
        if every_variant:
            return ordered
        seen: set[tuple[str, frozenset[int]]] = set()
        kept = []
        for nodeid in ordered:
            ran = self.signatures.get((nodeid, mutant.module), frozenset())
            variant = (nodeid.split("[", 1)[0], ran)
            if variant not in seen:
                seen.add(variant)
                kept.append(nodeid)
        return kept

    def _choose(self, mutant: Mutant) -> set[str]:
        if mutant.selection == LINE:
            first, last = mutant.lines
            chosen: set[str] = set()
            for line in range(first, last + 1):
                chosen |= self.lines.get((mutant.module, line), set())
            return chosen
        if mutant.selection == FUNCTION:
            return self.functions.get(f"{mutant.module} | {mutant.function}", set())
        # Run on import: seen through the functions that use what the statement binds.
        if not mutant.names or any(name in self.foreign for name in mutant.names):
            return self.modules.get(mutant.module, set())
        users = set().union(*(self.used_by.get(name, set()) for name in mutant.names))
        return set().union(*(self.functions.get(user, set()) for user in users))


@dataclass
class Progress:
    """A line per finished mutant, and the tally so far; each outcome kept as it comes."""

    total: int
    journal: Path | None = None  # one JSON line per outcome, written at once
    trace_key: str = ""  # the tree the outcomes hold for
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def note(self, outcome: Outcome) -> None:
        """Print one finished mutant."""
        self.done += 1
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        elapsed = time.monotonic() - self.started
        if self.journal is not None:
            with self.journal.open("a", encoding="utf-8") as journal:
                journal.write(json.dumps({"trace": self.trace_key, **outcome.to_json()}) + "\n")
        m = outcome.mutant
        print(
            f"[{self.done}/{self.total} {elapsed:5.0f}s] {outcome.status:9} "
            f"{outcome.seconds:5.1f}s {m.module}:{m.line} {m.key}",
            flush=True,
        )


def git_files() -> list[str]:
    """The files of the working tree that git knows or would add."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (REPO / name).is_file()})


def make_copy(tree: Path, files: Sequence[str]) -> None:
    """A fresh copy of `files` at `tree`."""
    if tree.exists():
        shutil.rmtree(tree)
    for name in files:
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def fingerprint(files: Sequence[str]) -> str:
    """A hash of what a trace depends on: when it changes, the tests are traced again.

    The package, the tests that may be chosen and their helpers, the tracer, the settings
    of the run that decide what is traced, and the interpreter.
    """
    digest = hashlib.sha256(sys.version.encode())
    digest.update(repr((config.MODULES, config.TEST_FILES, config.IGNORED_TEST_FILES)).encode())
    for name in files:
        if name.startswith("tap_contactbased/") or (
            name.startswith("tests/")
            and not name.startswith(("tests/e2e/", "tests/mutation/"))
            and name not in config.IGNORED_TEST_FILES
        ):
            digest.update(name.encode() + b"\0" + (REPO / name).read_bytes() + b"\0")
    digest.update((REPO / "tests/mutation/trace.py").read_bytes())
    return digest.hexdigest()[:16]


def test_files(files: Sequence[str]) -> list[str]:
    """The test files whose tests may be chosen."""
    return [
        name
        for name in files
        if fnmatch.fnmatch(name, config.TEST_FILES) and name not in config.IGNORED_TEST_FILES
    ]


def split_evenly(names: Sequence[str], weights: dict[str, float], parts: int) -> list[list[str]]:
    """`names` in `parts` groups of about the same weight, heaviest first."""
    groups: list[list[str]] = [[] for _ in range(parts)]
    totals = [0.0] * parts
    for name in sorted(names, key=lambda n: (-weights.get(n, 1.0), n)):
        lightest = totals.index(min(totals))
        groups[lightest].append(name)
        totals[lightest] += weights.get(name, 1.0)
    return [group for group in groups if group]


def function_at(spans: list[tuple[str, int, int]], line: int) -> str:
    """The innermost function or class whose text holds `line` (its first line counts)."""
    inside = [(end - first, name) for name, first, end in spans if first <= line <= end]
    return min(inside)[1] if inside else "<module>"


def trace_tests(trees: Sequence[Path], files: Sequence[str], *, fresh: bool) -> Trace:
    """Run the selectable tests once, traced, spread over `trees`; or reuse the last trace.

    Each copy runs a share of the test files, weighed by what they took the last time.
    """
    report = WORK / f"trace-{fingerprint(files)}.json"
    took = 0.0
    if fresh or not report.exists():
        started = time.monotonic()
        findings = run_traced(trees, test_files(files))
        took = time.monotonic() - started
        for old in WORK.glob("trace-*.json"):
            old.unlink()
        report.write_text(json.dumps(findings), encoding="utf-8")
    findings = json.loads(report.read_text(encoding="utf-8"))
    trace = read_trace(findings, trees, took)
    trace.key = report.stem.removeprefix("trace-")
    return trace


def run_traced(trees: Sequence[Path], tests: Sequence[str]) -> dict[str, t.Any]:
    """The findings of the trace plugin over `tests`, merged from one process per copy."""
    site = WORK / "sitecustomize"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    weights_file = WORK / "test-file-seconds.json"
    weights = json.loads(weights_file.read_text()) if weights_file.exists() else {}
    groups = split_evenly(tests, weights, len(trees))
    print(f"Tracing {len(tests)} test files on the unmutated tree in {len(groups)} process(es) ...")
    running = []
    for index, (tree, group) in enumerate(zip(trees, groups, strict=False)):
        log, report = WORK / f"trace-{index}.log", WORK / f"trace-part-{index}.json"
        report.unlink(missing_ok=True)
        env = {
            **os.environ,
            TARGETS_VARIABLE: os.pathsep.join(str(tree / m) for m in config.MODULES),
            REPORT_VARIABLE: str(report),
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.pop(OUT_VARIABLE, None)
        command = [sys.executable, "-m", "pytest", "-p", "tests.mutation.trace", "-q"]
        command += ["-p", "no:cacheprovider", *group]
        with log.open("w") as out:
            process = subprocess.Popen(command, cwd=tree, env=env, stdout=out, stderr=out)
        running.append((process, log, report))
    merged: dict[str, t.Any] = {"tests": {}, "failed": [], "imported": set()}
    problems = []
    for process, log, report in running:
        code = process.wait()
        part = json.loads(report.read_text()) if report.exists() else None
        if code != 0 or part is None or part["failed"]:
            failed = ", ".join((part or {}).get("failed", [])) or f"pytest exited {code}"
            problems.append(f"{failed} (output: {log.relative_to(REPO)})")
            continue
        merged["tests"].update(part["tests"])
        merged["imported"].update(part["imported"])
    if problems:
        msg = f"the tests do not pass on the unmutated tree: {'; '.join(problems)}"
        raise RunError(msg)
    seconds: dict[str, float] = {}
    for nodeid, test in merged["tests"].items():
        file = nodeid.split("::", 1)[0]
        seconds[file] = seconds.get(file, 0.0) + test["seconds"]
    weights_file.write_text(json.dumps(seconds, indent=1, sort_keys=True))
    merged["imported"] = sorted(merged["imported"])
    return merged


def read_trace(findings: dict[str, t.Any], trees: Sequence[Path], took: float) -> Trace:
    """The trace of `findings`, its files mapped back to modules and functions."""
    sources = {m: (REPO / m).read_text(encoding="utf-8") for m in config.MODULES}
    spans = {m: function_spans(source) for m, source in sources.items()}
    module_of = {str(tree / m): m for tree in trees for m in config.MODULES}
    trace = Trace({}, {}, {}, {}, findings["imported"], took, reused=took == 0.0)
    for nodeid, test in findings["tests"].items():
        trace.seconds[nodeid] = test["seconds"]
        ran: dict[str, set[int]] = {}
        for file, line in test["hits"]:
            module = module_of.get(file)
            if module is None:  # traced in a copy this run does not have
                module = next(m for m in config.MODULES if file.endswith(f"/{m}"))
            trace.modules.setdefault(module, set()).add(nodeid)
            if line < 0:  # a function started
                name = function_at(spans[module], -line)
                trace.functions.setdefault(f"{module} | {name}", set()).add(nodeid)
            else:
                trace.lines.setdefault((module, line), set()).add(nodeid)
                ran.setdefault(module, set()).add(line)
        for module, lines in ran.items():
            trace.signatures[nodeid, module] = frozenset(lines)
    for module, source in sources.items():
        for function, names in references(source).items():
            for name in names:
                trace.used_by.setdefault(name, set()).add(f"{module} | {function}")
    others = set(REPO.glob("tap_contactbased/**/*.py")) - {REPO / m for m in config.MODULES}
    words = (re.findall(r"\w+", path.read_text(encoding="utf-8")) for path in others)
    trace.foreign = frozenset(word for text in words for word in text)
    return trace


class RunError(Exception):
    """The run cannot go on: one line says why."""


def preload(names: Sequence[str]) -> None:
    """Import what the tests import, once, so that every forked mutant starts warm."""
    import pytest  # noqa: F401, PLC0415 - imported here, by the process that forks

    for name in names:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if threading.active_count() > 1:
        msg = "importing the test dependencies started a thread; forking would not be safe"
        raise RunError(msg)


class FirstFailure:
    """Pytest plugin of a mutant's process: notes the test that killed the mutant.

    Each test also has its own budget: a mutant that makes one test hang (a slot never
    freed, a wait never woken) is stopped when that test runs past it, not when the time
    of every chosen test has gone by.
    """

    def __init__(self, path: Path, budgets: dict[str, float] | None = None) -> None:
        """Write the failing test's id to `path`; stop a test past its `budgets` seconds."""
        self._path = path
        self._budgets = budgets or {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Start the test's clock."""
        budget = self._budgets.get(nodeid)
        if budget is None:
            return

        def expired(_signum: int, _frame: t.Any) -> None:
            if not self._path.exists():
                self._path.write_text(f"timeout {nodeid} ({budget:.1f} s)", encoding="utf-8")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(TEST_TIMEOUT_EXIT)

        signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, budget)

    def pytest_runtest_logfinish(self) -> None:
        """Stop the test's clock."""
        signal.setitimer(signal.ITIMER_REAL, 0)

    def pytest_runtest_logreport(self, report: t.Any) -> None:
        """Note the first failure."""
        if report.failed and not self._path.exists():
            self._path.write_text(report.nodeid, encoding="utf-8")

    def pytest_collectreport(self, report: t.Any) -> None:
        """A module that no longer imports kills the mutant too."""
        if report.failed and not self._path.exists():
            self._path.write_text(f"collecting {report.nodeid}", encoding="utf-8")


def run_in_child(
    tree: Path, nodeids: Sequence[str], log: Path, marker: Path, budgets: dict[str, float]
) -> t.NoReturn:
    """Run `nodeids` in `tree` in this (forked) process and exit with pytest's status."""
    code = 99
    try:
        os.setpgid(0, 0)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(tree)
        for name in list(sys.modules):
            if name.split(".")[0] in {"tap_contactbased", "tests", "conftest"}:
                del sys.modules[name]
        sys.path[:] = [str(tree), *(p for p in sys.path if p not in {"", str(REPO)})]
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        import pytest  # noqa: PLC0415 - already imported: preload

        args = ["-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(tree), "--tb=short"]
        # Pytest plugins of the dependencies (the SDK's) were imported by `preload`, before
        # pytest could mark them for assertion rewriting: nothing of ours is lost by that.
        args += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        code = int(pytest.main([*args, *nodeids], plugins=[FirstFailure(marker, budgets)]))
    except BaseException:  # whatever happens, this process must end here
        import traceback  # noqa: PLC0415

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@dataclass
class Slot:
    """A copy of the repository and the mutant running in it."""

    tree: Path
    log: Path  # the output of the mutant's tests
    marker: Path  # names the test that killed the mutant
    pid: int = 0
    mutant: Mutant | None = None
    original: str = ""
    started: float = 0.0
    deadline: float = 0.0
    ran: list[str] = field(default_factory=list)  # the mutant's tests, in this slot


def kill_group(pid: int) -> None:
    """End a mutant's process and whatever it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_mutants(
    mutants: Sequence[Mutant],
    trace: Trace,
    trees: Sequence[Path],
    note: Callable[[Outcome], None],
    work: Path = WORK,
    *,
    every_variant: bool = False,
) -> list[Outcome]:
    """Run every mutant, as many at once as there are copies; logs go to `work`.

    A mutant that survives the fastest variant of a parametrized test runs again on the
    variants it skipped before it is called a survivor: a variant may hold the one case
    that tells the mutant apart, and a survivor must be listed by hand.
    """
    outcomes: list[Outcome] = []
    queue = [(m, trace.tests_for(m, every_variant=every_variant)) for m in mutants]
    survived_first: dict[str, Outcome] = {}  # mutant key -> its outcome before the others
    slots = [
        Slot(tree, work / f"slot-{i}.log", work / f"slot-{i}.killed-by")
        for i, tree in enumerate(trees)
    ]
    busy: dict[int, Slot] = {}

    def settle(outcome: Outcome, ran: Sequence[str]) -> None:
        mutant = outcome.mutant
        earlier = survived_first.pop(mutant.key, None)
        if earlier is not None:
            outcome.seconds += earlier.seconds
            outcome.tests += earlier.tests
        elif outcome.status == SURVIVED:
            others = [n for n in trace.tests_for(mutant, every_variant=True) if n not in ran]
            if others:
                survived_first[mutant.key] = outcome
                queue.insert(0, (mutant, others))
                return
        outcomes.append(outcome)
        note(outcome)

    try:
        while queue or busy:
            for slot in slots:
                if slot.pid == 0 and queue:
                    mutant, nodeids = queue.pop(0)
                    if not nodeids:
                        settle(Outcome(mutant, UNCOVERED, detail=NO_TEST), [])
                    else:
                        start(slot, mutant, nodeids, trace)
                        busy[slot.pid] = slot
            pid, status = os.waitpid(-1, os.WNOHANG) if busy else (0, 0)
            if pid in busy:
                slot = busy.pop(pid)
                ran = slot.ran
                settle(finish(slot, status, timed_out=False), ran)
                continue
            now = time.monotonic()
            for slot in list(busy.values()):
                if now > slot.deadline:
                    kill_group(slot.pid)
                    _, status = os.waitpid(slot.pid, 0)
                    del busy[slot.pid]
                    ran = slot.ran
                    settle(finish(slot, status, timed_out=True), ran)
            time.sleep(POLL_SECONDS)
    finally:
        for slot in busy.values():
            kill_group(slot.pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(slot.pid, 0)
            restore(slot)
    return outcomes


NO_TEST = "no selectable test runs this code"


def start(slot: Slot, mutant: Mutant, nodeids: list[str], trace: Trace) -> None:
    """Start `mutant` in `slot`, its `nodeids` run in a process of their own."""
    path = slot.tree / mutant.module
    slot.original = path.read_text(encoding="utf-8")
    path.write_text(apply(slot.original, mutant), encoding="utf-8")
    shutil.rmtree(slot.tree / ".hypothesis", ignore_errors=True)
    slot.marker.unlink(missing_ok=True)
    expected = sum(trace.seconds[n] for n in nodeids)
    slot.mutant, slot.ran = mutant, nodeids
    slot.started = time.monotonic()
    slot.deadline = slot.started + config.TIMEOUT_BASE_SECONDS + config.TIMEOUT_FACTOR * expected
    budgets = {
        n: config.TEST_TIMEOUT_BASE_SECONDS + config.TIMEOUT_FACTOR * trace.seconds[n]
        for n in nodeids
    }
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        run_in_child(slot.tree, nodeids, slot.log, slot.marker, budgets)
    slot.pid = pid


def restore(slot: Slot) -> None:
    """Put the unmutated module back into the slot's copy."""
    if slot.mutant is not None:
        (slot.tree / slot.mutant.module).write_text(slot.original, encoding="utf-8")


def finish(slot: Slot, status: int, *, timed_out: bool) -> Outcome:
    """The outcome of the slot's mutant, which has ended; the slot is free again."""
    kill_group(slot.pid)  # whatever its tests started and left behind
    restore(slot)
    assert slot.mutant is not None
    seconds = time.monotonic() - slot.started
    log, marker = slot.log, slot.marker
    killed_by = marker.read_text(encoding="utf-8") if marker.exists() else None
    code = os.waitstatus_to_exitcode(status)
    outcome = Outcome(slot.mutant, SURVIVED, seconds, len(slot.ran), killed_by)
    if timed_out:
        outcome.status = TIMEOUT
        outcome.detail = f"stopped after {seconds:.0f} s"
    elif code == TEST_TIMEOUT_EXIT:
        outcome.status, outcome.killed_by = TIMEOUT, None
        outcome.detail = f"{killed_by}: one test ran past its budget"
    elif code in {1, 2, 3, 4}:  # failed, interrupted (collection), internal, usage error
        outcome.status = KILLED
    elif code != 0:
        outcome.status = ERROR
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        last = text.strip().splitlines()[-1:] or ["no output"]
        outcome.detail = f"pytest exited {code}: {last[0]} (log: {log})"
    slot.pid, slot.mutant, slot.ran = 0, None, []
    return outcome
