"""The package's structure, read from its source with `ast` (nothing of it is imported).

Each rule is a checker over parsed modules that returns what breaks it, one line each; the
tests run the checkers on the package, and on small made-up sources to prove they can fail.
"""

from __future__ import annotations

import ast
import functools
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

PACKAGE = Path(__file__).resolve().parents[1] / "tap_contactbased"


@functools.cache
def package_trees() -> dict[str, ast.Module]:
    """Every module of the package, parsed, by its path (`tap_contactbased/job.py`)."""
    return {
        path.relative_to(PACKAGE.parent).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def parsed(**sources: str) -> dict[str, ast.Module]:
    """Made-up modules, parsed, by name."""
    return {f"{name}.py": ast.parse(source) for name, source in sources.items()}


def stored_targets(node: ast.AST) -> Iterator[ast.expr]:
    """What an assignment, `del`, loop or `with ... as` writes, a tuple's elements one by one."""
    if isinstance(node, (ast.Assign, ast.Delete)):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars]
    else:
        return
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        elif isinstance(target, ast.Starred):
            targets.append(target.value)
        else:
            yield target


def where(module: str, node: ast.AST) -> str:
    """`module:line: statement` for a line of a failure."""
    return f"{module}:{getattr(node, 'lineno', 0)}: {ast.unparse(node)}"


def _in_source_order(line: str) -> tuple[str, int]:
    module, number, _ = line.split(":", 2)
    return module, int(number)


# Only the job writes its fields and its feed's state entry (plan §3.4)

JOB_MODULE = "tap_contactbased/job.py"
FEED_STATE_KEYS = frozenset({"in_flight", "delivered_through", "last_export_id", "rows_done"})


def job_attributes(job_module: ast.Module) -> set[str]:
    """Every `self.<name>` that `class ExportJob` assigns: the job's fields."""
    job_class = next(
        node
        for node in ast.walk(job_module)
        if isinstance(node, ast.ClassDef) and node.name == "ExportJob"
    )
    return {
        target.attr
        for node in ast.walk(job_class)
        for target in stored_targets(node)
        if isinstance(target, ast.Attribute) and _is_own(target.value)
    }


def _is_own(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"self", "cls"}


def _job_field_written(target: ast.expr, fields: set[str]) -> bool:
    """Whether a written `x.field`, `x.field.y` or `x.field[k]` goes into a job's field.

    `self.field` is another class's own field of that name, never the job's.
    """
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute) and node.attr in fields and not _is_own(node.value):
            return True
        node = node.value
    return False


def job_field_writes(modules: Mapping[str, ast.Module], fields: set[str]) -> list[str]:
    """Every write into a job's `fields` in `modules`: assignments, `del`, setattr/delattr."""
    found = []
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if any(_job_field_written(target, fields) for target in stored_targets(node)) or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"setattr", "delattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in fields
            ):
                found.append(where(module, node))
    return sorted(found, key=_in_source_order)


def _state_key(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in FEED_STATE_KEYS


def _writes_state_key(call: ast.Call) -> bool:
    """Whether a call like `state.pop("in_flight")` or `state.update(rows_done=1)` writes a key."""
    if not isinstance(call.func, ast.Attribute):
        return False
    method = call.func.attr
    if method in {"pop", "setdefault", "__setitem__", "__delitem__"}:
        return bool(call.args) and _state_key(call.args[0])
    if method == "update":
        named = any(keyword.arg in FEED_STATE_KEYS for keyword in call.keywords)
        in_dict = any(
            isinstance(arg, ast.Dict) and any(_state_key(key) for key in arg.keys)
            for arg in call.args
        )
        return named or in_dict
    return False


def feed_state_writes(modules: Mapping[str, ast.Module]) -> list[str]:
    """Every write of a feed state entry's key in `modules`: item stores, `del`, dict methods."""
    found = []
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if any(
                isinstance(target, ast.Subscript) and _state_key(target.slice)
                for target in stored_targets(node)
            ) or (isinstance(node, ast.Call) and _writes_state_key(node)):
                found.append(where(module, node))
    return sorted(found, key=_in_source_order)


def outside_the_job() -> dict[str, ast.Module]:
    return {module: tree for module, tree in package_trees().items() if module != JOB_MODULE}


def test_no_module_but_job_writes_a_job_attribute() -> None:
    fields = job_attributes(package_trees()[JOB_MODULE])

    assert job_field_writes(outside_the_job(), fields) == []


def test_no_module_but_job_writes_a_feed_state_entry() -> None:
    assert feed_state_writes(outside_the_job()) == []


def test_the_job_attribute_check_catches_a_write_from_outside() -> None:
    fields = job_attributes(package_trees()[JOB_MODULE])
    assert {"summary", "phase", "flight", "state", "records_required", "expected_rows"} <= fields
    scheduler = """
class Scheduler:
    def create(self, job, jobs):
        job.summary = None
        job.records_required, job.expected_rows = 1, 2
        job.create_tries += 1
        jobs[0].phase: str = "failed"
        job.flight.rows_done = 3
        del job.error
        setattr(job, "from_state", None)
        for job.window in []:
            pass
        self.summary = job.summary  # its own field, and a read
        job.unrelated = 4
"""

    found = job_field_writes(parsed(scheduler=scheduler), fields)

    assert [line.split(": ", 1)[1] for line in found] == [
        "job.summary = None",
        "job.records_required, job.expected_rows = (1, 2)",
        "job.create_tries += 1",
        "jobs[0].phase: str = 'failed'",
        "job.flight.rows_done = 3",
        "del job.error",
        "setattr(job, 'from_state', None)",
        "for job.window in []:\n    pass",
    ]
    # The job module itself writes a job's field from outside `self` (`resumed`): found too.
    assert job_field_writes({JOB_MODULE: package_trees()[JOB_MODULE]}, fields)


def test_the_feed_state_check_catches_a_write_from_outside() -> None:
    scheduler = """
def resume(state, job, states):
    state["in_flight"] = {}
    job.state["in_flight"]["rows_done"] = 3
    del states["f"]["in_flight"]
    state["delivered_through"] += ""
    state.pop("in_flight", None)
    state.setdefault("rows_done", 0)
    state.update(last_export_id="e")
    state.update({"delivered_through": "2026-11-26"})
    kept = state["in_flight"], state.get("rows_done"), "last_export_id" in state
    state["context"] = {}
"""

    found = feed_state_writes(parsed(scheduler=scheduler))

    assert [line.split(": ", 1)[1] for line in found] == [
        "state['in_flight'] = {}",
        "job.state['in_flight']['rows_done'] = 3",
        "del states['f']['in_flight']",
        "state['delivered_through'] += ''",
        "state.pop('in_flight', None)",
        "state.setdefault('rows_done', 0)",
        "state.update(last_export_id='e')",
        "state.update({'delivered_through': '2026-11-26'})",
    ]
    # What the job module writes, any other module writing it would be found.
    assert len(feed_state_writes({JOB_MODULE: package_trees()[JOB_MODULE]})) >= 5
