"""The package's import graph: no cycle, and SDK streams only in the stream layer.

Read with `ast` from the sources, never imported: every import counts, those under
`if t.TYPE_CHECKING:` and inside functions included. Each check is also run on small
made-up sources, to prove it can fail.
"""

from __future__ import annotations

import ast
import typing as t
from pathlib import Path

PACKAGE = "tap_contactbased"
ROOT = Path(__file__).parent.parent / PACKAGE
# The stream layer: the only modules that may import an SDK stream or tap, or the package's
# own streams, tap and command line. `__main__` is the command's entry point.
STREAM_LAYER = {"client", "tap", "cli", "sdk_internals", "__main__"}
SDK_STREAM_NAMES = {"Stream", "RESTStream", "Tap"}
SDK_STREAM_MODULES = ("singer_sdk.streams", "singer_sdk.tap_base")
OWN_STREAM_MODULES = ("client", "streams", "tap", "cli")
# What a module must never import (package modules, by their name under the package), for
# the layers that keep their nevers today. Later steps of the plan add rows.
NEVER = {
    "endpoints": {"*"},
    "spelling": {"*"},
    "errors": {"*"},
    "retry": {"api_client", "client", "streams", "job", "readers", "plan", "scheduler", "run"},
    "api_client": {
        "client",
        "streams",
        "tap",
        "cli",
        "job",
        "plan",
        "scheduler",
        "readers",
        "run",
        "lifecycle",
        "pagination",
    },
    "pagination": {"client", "streams", "tap", "cli"},
    "job": {"plan", "scheduler", "lifecycle", "api_client", "readers", "client", "streams"},
    "lifecycle": {"job", "plan", "scheduler", "client", "streams", "tap", "cli"},
    "run": {"plan", "scheduler", "client", "streams", "tap", "cli"},
    # The plan is made before anything is scheduled; the scheduler needs no plan, only jobs.
    "plan": {"scheduler", "readers", "client", "streams", "tap", "cli"},
    "scheduler": {"plan", "readers", "client", "streams", "tap", "cli"},
    "probe": {"client", "streams", "tap", "cli", "sdk_internals", "plan", "scheduler", "job"},
    # Rows are read, then typed: the reader hands the typer its chunks, never the reverse.
    "readers": {"client", "streams", "job", "plan", "scheduler"},
    "coercion": {"api_client", "retry", "readers", "client", "streams", "job", "plan", "scheduler"},
}

Imports = dict[str, set[tuple[str, int]]]


def package_sources(root: Path = ROOT) -> dict[str, str]:
    """Every module of the package by dotted name (`pkg.probe` for probe/__init__.py)."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def package_imports(sources: t.Mapping[str, str]) -> Imports:
    """What each module imports, as (name, line): package modules by their dotted name.

    `from pkg import endpoints` names the module `pkg.endpoints` when there is one, else
    the package itself. Names imported from outside the package are kept as written
    (`singer_sdk.RESTStream`), so that the rules can name them too.
    """
    imports: Imports = {}
    for module, source in sources.items():
        found = imports[module] = set()
        package = module if _is_package(module, sources) else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                for alias in node.names:
                    name = f"{base}.{alias.name}"
                    found.add(
                        (name if name in sources or base not in sources else base, node.lineno)
                    )
    return imports


def _is_package(module: str, sources: t.Mapping[str, str]) -> bool:
    return any(other.startswith(f"{module}.") for other in sources)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def cycles(imports: Imports) -> list[list[str]]:
    """Each import cycle among the modules of `imports`, once, as a path back to its start."""
    graph = {m: sorted({n for n, _ in names if n in imports}) for m, names in imports.items()}
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in graph[module]:
            if state.get(other) == "open":
                cycle = [*path[path.index(other) :], other]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    found.append(cycle)
            elif other not in state:
                visit(other, [*path, other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def in_stream_layer(module: str) -> bool:
    local = module.removeprefix(f"{PACKAGE}.")
    return local in STREAM_LAYER or local == "streams" or local.startswith("streams.")


def is_a_stream_import(name: str) -> bool:
    """An SDK stream or tap, or the package's own stream layer."""
    if name.startswith("singer_sdk."):
        sdk_name = name.removeprefix("singer_sdk.")
        return sdk_name in SDK_STREAM_NAMES or any(
            name == m or name.startswith(f"{m}.") for m in SDK_STREAM_MODULES
        )
    local = name.removeprefix(f"{PACKAGE}.")
    return name.startswith(f"{PACKAGE}.") and local.split(".")[0] in OWN_STREAM_MODULES


def stream_imports_outside_the_layer(imports: Imports) -> list[str]:
    """`module:line imports name` for each stream import outside the stream layer."""
    return sorted(
        f"{module}:{line} imports {name}"
        for module, names in imports.items()
        if not in_stream_layer(module)
        for name, line in names
        if is_a_stream_import(name)
    )


def broken_nevers(imports: Imports, never: t.Mapping[str, set[str]] = NEVER) -> list[str]:
    """`module:line imports name` for each import a layer must never make."""
    broken = []
    for module, names in imports.items():
        local = module.removeprefix(f"{PACKAGE}.")
        rule = never.get(local) or never.get(local.split(".")[0], set())
        for name, line in names:
            if not name.startswith(f"{PACKAGE}."):
                continue
            target = name.removeprefix(f"{PACKAGE}.").split(".")[0]
            if "*" in rule or target in rule:
                broken.append(f"{module}:{line} imports {name}")
    return sorted(broken)


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(package_imports(package_sources()))

    assert found == [], "\n".join(" -> ".join(cycle) for cycle in found)


def test_only_the_stream_layer_imports_an_sdk_stream() -> None:
    assert stream_imports_outside_the_layer(package_imports(package_sources())) == []


def test_each_layer_keeps_its_nevers() -> None:
    assert broken_nevers(package_imports(package_sources())) == []


def test_the_walk_sees_every_kind_of_import() -> None:
    imports = package_imports(package_sources())

    # Under TYPE_CHECKING, from the package's own __init__, and a module named in a list.
    assert any(n == f"{PACKAGE}.settings" for n, _ in imports[f"{PACKAGE}.retry"])
    assert any(n == f"{PACKAGE}.endpoints" for n, _ in imports[f"{PACKAGE}.run"])
    assert any(n == f"{PACKAGE}.probe" for n, _ in imports[f"{PACKAGE}.probe.command"])
    assert any(n == "singer_sdk.RESTStream" for n, _ in imports[f"{PACKAGE}.client"])


# Made-up packages, each breaking one rule: the checks above would catch them.
SYNTHETIC = {
    "pkg": "",
    "pkg.a": "import typing as t\nif t.TYPE_CHECKING:\n    from pkg.b import B\n",
    "pkg.b": "def f():\n    from pkg import a\n",
    "pkg.c": "from pkg import d\n",
    "pkg.d": "from singer_sdk import RESTStream\nfrom . import e\n",
    "pkg.e": "from pkg.d import D\n",
}


def test_each_check_catches_what_it_is_for() -> None:
    imports = package_imports(SYNTHETIC)

    assert cycles(imports) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.d", "pkg.e", "pkg.d"]]
    layer = {
        f"{PACKAGE}.lifecycle": "from singer_sdk import RESTStream\n",
        f"{PACKAGE}.probe.observe": f"from {PACKAGE}.streams.base import X\n",
        f"{PACKAGE}.probe": "",
        f"{PACKAGE}.streams": "",
        f"{PACKAGE}.streams.base": "from singer_sdk.streams.rest import RESTStream\n",
        f"{PACKAGE}.api_client": (
            f"import typing as t\nif t.TYPE_CHECKING:\n    from {PACKAGE}.client import S\n"
        ),
        f"{PACKAGE}.client": "from singer_sdk import RESTStream\n",
    }
    assert stream_imports_outside_the_layer(package_imports(layer)) == [
        f"{PACKAGE}.api_client:3 imports {PACKAGE}.client",
        f"{PACKAGE}.lifecycle:1 imports singer_sdk.RESTStream",
        f"{PACKAGE}.probe.observe:1 imports {PACKAGE}.streams.base",
    ]
    assert broken_nevers(package_imports(layer)) == [
        f"{PACKAGE}.api_client:3 imports {PACKAGE}.client",
        f"{PACKAGE}.probe.observe:1 imports {PACKAGE}.streams.base",
    ]
