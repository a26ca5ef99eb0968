"""docs/architecture.md stays true to the package, and the README leads to it.

Every path, code name and test the map cites must exist, every module of the package must be
named in it (a new module gets its line), and its table of nevers must be the import-graph
test's own. The sources are read with `ast`, never imported. Each check is also run on a
small made-up map, to prove it can fail.

In the map, code is named in backticks as `module.Name.method`, the module under
`tap_contactbased/` (`streams.export_rows.ChunkDelivery.rows`); a backticked path ending in
`.py` or holding a `/` is under `tap_contactbased/`, unless it starts at the repository's root
(`tests/`, `docs/`, ...).
"""

from __future__ import annotations

import ast
import functools
import re
import typing as t
from pathlib import Path

from tests.test_import_graph import NEVER

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tap_contactbased"
DOC = REPO / "docs" / "architecture.md"
README = REPO / "README.md"
DOC_LINK = "](docs/architecture.md)"

CODE_SPAN = re.compile(r"`([^`\s]+)`")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
PACKAGE_PATH = re.compile(r"tap_contactbased/[\w/.]*\w")
TEST_CITATION = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
ROOT_FOLDERS = ("tap_contactbased/", "tests/", "docs/", "bench/", "scripts/")
LIFE_HEADING = "## The life of one export"
NEVER_HEADER = "| module | never imports |"
ANYTHING = "anything of the package"


def code_spans(text: str) -> list[str]:
    """The backticked words of `text` (those without a space)."""
    return CODE_SPAN.findall(text)


def is_path(span: str) -> bool:
    return "::" not in span and ("/" in span or span.endswith((".py", ".md")))


def missing_paths(text: str, package: Path = PACKAGE, repo: Path = REPO) -> list[str]:
    """The backticked paths of `text` that do not exist."""
    return sorted(
        span
        for span in set(code_spans(text))
        if is_path(span)
        and not (repo / span if span.startswith(ROOT_FOLDERS) else package / span).exists()
    )


def missing_package_paths(text: str, repo: Path = REPO) -> list[str]:
    """The `tap_contactbased/...` paths of `text`, backticked or not, that do not exist."""
    return sorted(p for p in set(PACKAGE_PATH.findall(text)) if not (repo / p).exists())


def missing_links(text: str, folder: Path) -> list[str]:
    """The relative links of `text` to a file that is not there (from `folder`)."""
    return sorted(
        target
        for target in set(LINK.findall(text))
        if "://" not in target and not (folder / target).exists()
    )


def modules_not_named(text: str, package: Path = PACKAGE) -> list[str]:
    """The module files of the package that `text` does not name (`streams/enrichment.py`)."""
    named = set(code_spans(text))
    return sorted(
        rel
        for path in package.rglob("*.py")
        if (rel := path.relative_to(package).as_posix()) not in named
    )


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _module_file(parts: t.Sequence[str], package: Path) -> Path | None:
    folder = package.joinpath(*parts)
    for path in (folder.with_suffix(".py"), folder / "__init__.py"):
        if path.is_file():
            return path
    return None


def _defined(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """The names a module or class body defines: functions, classes and assigned names."""
    names: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            names.update((n.id, node) for n in node.targets if isinstance(n, ast.Name))
    return names


def undefined_names(text: str, package: Path = PACKAGE) -> list[str]:
    """The `module.Name...` spans of `text` whose module does not define them.

    A span is a code name when it starts with a module of the package (the longest that
    exists); other dotted spans (`singer_sdk.typing`) are left alone.
    """
    undefined = []
    for span in sorted(set(code_spans(text))):
        if is_path(span) or not DOTTED.fullmatch(span):
            continue
        parts = span.removeprefix(f"{package.name}.").split(".")
        module = next(
            (
                (path, parts[cut:])
                for cut in range(len(parts) - 1, 0, -1)
                if (path := _module_file(parts[:cut], package)) is not None
            ),
            None,
        )
        if module is None:
            continue
        path, names = module
        body: list[ast.stmt] = _parsed(path).body
        for name in names:
            node = _defined(body).get(name)
            if node is None:
                undefined.append(f"{span}: {path.relative_to(package).as_posix()} has no {name}")
                break
            body = node.body if isinstance(node, ast.ClassDef) else []
    return undefined


def missing_tests(text: str, repo: Path = REPO) -> list[str]:
    """The `tests/file.py::name` citations of `text` that name no test function there."""
    missing = []
    for file, name in sorted(set(TEST_CITATION.findall(text))):
        path = repo / file
        if not path.is_file():
            missing.append(f"{file}::{name}: no such file")
            continue
        tree = _parsed(path)
        defined = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        if name not in defined:
            missing.append(f"{file}::{name}: no such test")
    return missing


def never_table(text: str) -> dict[str, set[str]]:
    """The table of nevers of `text`: module -> the modules it never imports (`*`: any)."""
    rows = text.split(NEVER_HEADER, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    table: dict[str, set[str]] = {}
    for row in rows:
        modules, nevers = (cell.strip() for cell in row.strip("|").split("|"))
        never = {"*"} if nevers == ANYTHING else set(code_spans(nevers))
        for module in code_spans(modules):
            table[module.removesuffix(".py").removesuffix("/")] = never
    return table


def unknown_job_operations(text: str, package: Path = PACKAGE) -> list[str]:
    """The job's operations in the life table of `text` that `job.ExportJob` does not have."""
    section = text.split(LIFE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    job = _defined(_parsed(package / "job.py").body)["ExportJob"]
    assert isinstance(job, ast.ClassDef)
    methods = _defined(job.body)
    return sorted(
        operation
        for row in rows
        for operation in code_spans(row.strip("|").split("|")[2])
        if "." not in operation and operation not in methods
    )


def layout_paragraph(readme: str) -> str:
    """The README's paragraph that begins `Layout.`."""
    return next(p for p in readme.split("\n\n") if p.startswith("Layout."))


def test_every_path_the_architecture_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")

    assert missing_paths(text) == []
    assert missing_package_paths(text) == []
    assert missing_links(text, DOC.parent) == []


def test_every_module_of_the_package_is_named_in_the_architecture() -> None:
    assert modules_not_named(DOC.read_text(encoding="utf-8")) == []


def test_every_code_name_of_the_architecture_is_defined_where_it_says() -> None:
    assert undefined_names(DOC.read_text(encoding="utf-8")) == []


def test_every_test_the_architecture_and_the_readme_cite_exists() -> None:
    assert missing_tests(DOC.read_text(encoding="utf-8")) == []
    assert missing_tests(README.read_text(encoding="utf-8")) == []


def test_the_life_of_an_export_names_only_operations_of_the_job() -> None:
    assert unknown_job_operations(DOC.read_text(encoding="utf-8")) == []


def test_the_never_table_is_the_import_graph_tests_own() -> None:
    assert never_table(DOC.read_text(encoding="utf-8")) == NEVER


def test_the_readme_layout_links_the_architecture() -> None:
    assert DOC_LINK in layout_paragraph(README.read_text(encoding="utf-8"))


def test_every_package_path_the_readme_names_exists() -> None:
    assert missing_package_paths(README.read_text(encoding="utf-8")) == []


# A made-up map of a made-up package, each line breaking one rule.
MADE_UP_PACKAGE = {
    "tap_contactbased/__init__.py": "",
    "tap_contactbased/job.py": (
        "class ExportJob:\n    def confirm(self): ...\nMAX: int = 8\ndef start_bookmark(): ...\n"
    ),
    "tap_contactbased/streams/__init__.py": "",
    "tap_contactbased/streams/rows.py": "def rows(): ...\n",
    "tap_contactbased/orphan.py": "",
    "tap_contactbased/errors.py": "",
    "tap_contactbased/spelling.py": "",
    "tests/test_job.py": "def test_it_confirms(): ...\n",
}
MADE_UP_MAP = """\
`__init__.py`, `job.py`, `streams/__init__.py`, `streams/rows.py`, `orchestrator.py`,
`tap_contactbased/plan.py`, [gone](gone.md).
`job.ExportJob.confirm`, `job.MAX`, `streams.rows.rows`, `job.ExportJob.deliver`,
`streams.rows.Reader`, `job.ExportJob.confirm.nested`, `singer_sdk.typing`.
`tests/test_job.py::test_it_confirms`, `tests/test_job.py::test_it_delivers`,
`tests/test_gone.py::test_x`.

## The life of one export

| step | where | the job's operations | STATE |
|:--|:--|:--|:--|
| create | `job.ExportJob` | `confirm`, `job.start_bookmark`, `launch` | `rows_done` |

## Nevers

| module | never imports |
|:--|:--|
| `errors.py`, `spelling.py` | anything of the package |
| `probe/` | `client`, `streams` |

Layout. See [the map](docs/architecture.md).
"""


def test_each_check_catches_what_it_is_for(tmp_path: Path) -> None:
    for name, source in MADE_UP_PACKAGE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    package = tmp_path / "tap_contactbased"

    assert missing_paths(MADE_UP_MAP, package, tmp_path) == [
        "orchestrator.py",
        "probe/",
        "tap_contactbased/plan.py",
    ]
    assert missing_package_paths(MADE_UP_MAP, tmp_path) == ["tap_contactbased/plan.py"]
    assert missing_links(MADE_UP_MAP, tmp_path) == ["docs/architecture.md", "gone.md"]
    assert modules_not_named(MADE_UP_MAP, package) == ["orphan.py"]
    assert undefined_names(MADE_UP_MAP, package) == [
        "job.ExportJob.confirm.nested: job.py has no nested",
        "job.ExportJob.deliver: job.py has no deliver",
        "streams.rows.Reader: streams/rows.py has no Reader",
    ]
    assert missing_tests(MADE_UP_MAP, tmp_path) == [
        "tests/test_gone.py::test_x: no such file",
        "tests/test_job.py::test_it_delivers: no such test",
    ]
    assert unknown_job_operations(MADE_UP_MAP, package) == ["launch"]
    assert never_table(MADE_UP_MAP) == {
        "errors": {"*"},
        "spelling": {"*"},
        "probe": {"client", "streams"},
    }
    assert layout_paragraph(MADE_UP_MAP) == "Layout. See [the map](docs/architecture.md).\n"
