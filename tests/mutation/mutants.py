"""The mutants of a module: one small plausible bug each, named so the name survives edits.

A mutant is found on the module's syntax tree and applied to its text: the mutated node's
span is replaced by the mutated node written out in parentheses (a statement by `pass`), so
line numbers stay as they were, and the result is checked to parse into exactly the
mutated tree. Its identity is `function | operator | before -> after`, where before and
after are the mutated node (or, for a constant, the expression around it) as `ast.unparse`
writes it, narrowed to where they differ: an edit elsewhere in the module, in the same
function included, leaves it alone. When one function holds the same mutant twice, the
second is `#2`.

What is not mutated: docstrings and other strings (messages), f-strings, annotations,
decorators, `assert` statements (type narrowing; a flip always fails), `if TYPE_CHECKING:`
blocks, comparisons with `sys.version_info` (interpreter switches), log calls (their
removal, like a changed message, is for the tests that read the log, which check its text),
and every line with `# pragma: no mutate`.
"""

from __future__ import annotations

import ast
import copy
import typing as t
from dataclasses import dataclass

Path = tuple[tuple[str, int | None], ...]  # from the module node: (field, index in a list)
LINE, FUNCTION, MODULE = "line", "function", "module"  # how a mutant's tests are chosen

PRAGMA = "# pragma: no mutate"
DISPLAY_CONTEXT = 32  # characters kept on each side of a difference in a mutant's name
DISPLAY_DIFFERENCE = 48  # characters kept of a long difference
LOG_CALLS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
# Statements short enough to name a constant of theirs in full.
CONTEXT_STATEMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return)

COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
ARITHMETIC_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
AUGMENTED_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
OPERATORS = (
    "compare",  # a < b -> a <= b, == -> !=, is -> is not, in -> not in (and back)
    "boolean",  # and <-> or
    "drop-not",  # not x -> x
    "negate",  # if x: -> if not x: (conditions that are no comparison or boolean operation)
    "constant",  # True <-> False, an integer n -> n + 1
    "arithmetic",  # + <-> -, * <-> /, // -> *, % -> //, ** -> *
    "augmented",  # += <-> -=, *= -> /=, |= <-> &=
    "drop-minus",  # -x -> x
    "min-max",  # min( <-> max(
    "drop-raise",  # raise ... -> pass
    "drop-return",  # return x -> return None; an early bare return -> pass
    "drop-call",  # a call on its own line -> pass
    "drop-del",  # del x[k] -> pass
    "loop",  # break <-> continue
)


@dataclass(frozen=True)
class Mutant:
    """One mutation of one module."""

    module: str  # the module's path in the repository
    function: str  # qualified name of the innermost function or class, or <module>
    operator: str
    before: str
    after: str
    line: int
    path: Path
    replacement: ast.AST  # the node put at `path`
    statement: bool  # a statement replaced, else an expression
    # Which tests can tell: those that ran one of `lines` (LINE), that called `function`
    # (FUNCTION: a default value, evaluated on import but seen through calls), or that ran any
    # code of `module` (MODULE: code run on import, at module level or in a class body).
    selection: str
    lines: tuple[int, int]  # first and last line of the statement (or header) around it
    # For MODULE: the names its module-level statement binds (a class: the class's name),
    # through which the functions that use them see the mutant.
    names: tuple[str, ...] = ()
    occurrence: int = 1

    @property
    def key(self) -> str:
        """The mutant's name within its module."""
        name = f"{self.function} | {self.operator} | {self.before} -> {self.after}"
        return name if self.occurrence == 1 else f"{name} #{self.occurrence}"

    @property
    def ident(self) -> str:
        """The mutant's name in the whole run: module, then key."""
        return f"{self.module} | {self.key}"


def narrowed(before: str, after: str) -> tuple[str, str]:
    """`before` and `after` cut to where they differ, with some context on each side."""
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < min(len(before), len(after)) - prefix and before[-1 - suffix] == after[-1 - suffix]
    ):
        suffix += 1
    start = max(0, prefix - DISPLAY_CONTEXT)

    def cut(text: str) -> str:
        end = min(len(text), len(text) - suffix + DISPLAY_CONTEXT, prefix + DISPLAY_DIFFERENCE)
        return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")

    return cut(before), cut(after)


def bound_names(node: ast.stmt) -> tuple[str, ...]:
    """The names a module-level statement binds."""
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return (node.name,)
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    return tuple(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))


def statement_lines(node: ast.stmt) -> tuple[int, int]:
    """The lines of a simple statement, or of the header of a compound one."""
    body = getattr(node, "body", None)
    if isinstance(body, list) and body:
        return node.lineno, max(node.lineno, body[0].lineno - 1)
    return node.lineno, t.cast("int", node.end_lineno)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _mentions_version_info(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "version_info" for n in ast.walk(node))


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_log_call(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr in LOG_CALLS


class _Finder:
    """Walks one module's tree and collects its mutants."""

    def __init__(self, module: str, source: str) -> None:
        self.module = module
        self.lines = source.splitlines()
        self.found: list[Mutant] = []
        self._scope: list[tuple[str, bool]] = []  # (name, is a function)
        self._lines: tuple[int, int] = (0, 0)  # of the innermost statement (or header)
        self._names: tuple[str, ...] = ()  # bound by the module-level statement around
        self._in_defaults = False

    def visit(self, node: ast.AST, path: Path, parent: ast.AST | None) -> None:
        if isinstance(node, (ast.stmt, ast.expr)) and PRAGMA in self.lines[node.lineno - 1]:
            return
        if isinstance(node, (ast.Assert, ast.JoinedStr, ast.Import, ast.ImportFrom)):
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            return
        if isinstance(node, ast.Compare) and _mentions_version_info(node):
            return
        named = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._scope.append((node.name, not isinstance(node, ast.ClassDef)))
        outer_lines, outer_defaults = self._lines, self._in_defaults
        if isinstance(node, ast.stmt):
            self._lines = statement_lines(node)
            if len(path) == 1:
                self._names = bound_names(node)
        self._in_defaults = outer_defaults or isinstance(node, ast.arguments)
        self._mutate(node, path, parent)
        for field, value in ast.iter_fields(node):
            if field in {"decorator_list", "annotation", "returns", "type_comment"}:
                continue
            if isinstance(value, list):
                for index, child in enumerate(value):
                    if isinstance(child, ast.AST) and not (
                        field == "body" and index == 0 and named and _is_docstring(child)
                    ):
                        self.visit(child, (*path, (field, index)), node)
            elif isinstance(value, ast.AST):
                self.visit(value, (*path, (field, None)), node)
        if named:
            self._scope.pop()
        self._lines, self._in_defaults = outer_lines, outer_defaults

    def _add(
        self,
        operator: str,
        node: ast.AST,
        path: Path,
        replacement: ast.AST,
        *,
        shown: tuple[ast.AST, ast.AST] | None = None,
    ) -> None:
        statement = isinstance(node, ast.stmt)
        before_node, after_node = shown or (node, replacement)
        before, after = ast.unparse(before_node), ast.unparse(after_node)
        if statement:
            before = before.splitlines()[0]
        before, after = narrowed(before, after)
        self.found.append(
            Mutant(
                module=self.module,
                function=".".join(name for name, _ in self._scope) or "<module>",
                operator=operator,
                before=before,
                after=after,
                line=getattr(node, "lineno", 0),
                path=path,
                replacement=replacement,
                statement=statement,
                selection=self._selection(),
                lines=self._lines,
                names=self._names if self._selection() == MODULE else (),
            )
        )

    def _selection(self) -> str:
        if not (self._scope and self._scope[-1][1]):
            return MODULE
        return FUNCTION if self._in_defaults else LINE

    def _in_context(
        self, parent: ast.AST | None, node: ast.AST, new: ast.AST
    ) -> tuple[ast.AST, ast.AST] | None:
        """The code around `node`, before and after it becomes `new`, to name a mutant."""
        if isinstance(parent, ast.arguments):  # a default value: shown as name=value
            positional = [*parent.posonlyargs, *parent.args]
            with_default = positional[len(positional) - len(parent.defaults) :]
            pairs = [
                *zip(with_default, parent.defaults, strict=True),
                *zip(parent.kwonlyargs, parent.kw_defaults, strict=True),
            ]
            name = next(arg.arg for arg, default in pairs if default is node)
            return ast.keyword(name, t.cast("ast.expr", node)), ast.keyword(
                name, t.cast("ast.expr", new)
            )
        if not isinstance(parent, (ast.expr, ast.keyword, *CONTEXT_STATEMENTS)):
            return None
        changed = copy.deepcopy(parent)
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(changed, field, new)
            elif isinstance(value, list) and any(v is node for v in value):
                items = getattr(changed, field)
                items[next(i for i, v in enumerate(value) if v is node)] = new
        return parent, changed

    def _mutate(self, node: ast.AST, path: Path, parent: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            value = node.value
            new = ast.Constant(not value if isinstance(value, bool) else value + 1)
            self._add("constant", node, path, new, shown=self._in_context(parent, node, new))
        elif isinstance(node, ast.expr):
            for operator, replacement in expression_mutations(node):
                self._add(operator, node, path, replacement)
        self._mutate_condition(node, path)
        self._mutate_statement(node, path, parent)

    def _mutate_condition(self, node: ast.AST, path: Path) -> None:
        tests: list[tuple[ast.expr, Path]] = []
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            tests.append((node.test, (*path, ("test", None))))
        elif isinstance(node, ast.comprehension):
            tests += [(test, (*path, ("ifs", i))) for i, test in enumerate(node.ifs)]
        for test, test_path in tests:
            plain = not isinstance(test, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant))
            if plain and PRAGMA not in self.lines[test.lineno - 1]:
                new = ast.UnaryOp(ast.Not(), copy.deepcopy(test))
                self._add("negate", test, test_path, new)

    def _mutate_statement(self, node: ast.AST, path: Path, parent: ast.AST | None) -> None:
        if isinstance(node, ast.Raise):
            self._add("drop-raise", node, path, ast.Pass())
        elif isinstance(node, ast.Return):
            if node.value is None:
                body = getattr(parent, path[-1][0]) if parent is not None else []
                if body and body[-1] is not node:
                    self._add("drop-return", node, path, ast.Pass())
            elif not (
                isinstance(node.value, ast.Constant)
                and (node.value.value is None or isinstance(node.value.value, int))
            ):  # a number or a boolean is mutated as a constant
                self._add("drop-return", node, path, ast.Return(ast.Constant(None)))
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and not _is_log_call(node.value)
        ):
            self._add("drop-call", node, path, ast.Pass())
        elif isinstance(node, ast.Delete):
            self._add("drop-del", node, path, ast.Pass())
        elif isinstance(node, ast.AugAssign) and type(node.op) in AUGMENTED_SWAPS:
            new = copy.deepcopy(node)
            new.op = AUGMENTED_SWAPS[type(node.op)]()
            self._add("augmented", node, path, new)
        elif isinstance(node, ast.Break):
            self._add("loop", node, path, ast.Continue())
        elif isinstance(node, ast.Continue):
            self._add("loop", node, path, ast.Break())


def expression_mutations(node: ast.expr) -> list[tuple[str, ast.expr]]:
    """The operators that apply to an expression (constants aside), and what each makes of it."""
    found: list[tuple[str, ast.expr]] = []
    if isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            compare = copy.deepcopy(node)
            compare.ops[index] = COMPARE_SWAPS[type(op)]()
            found.append(("compare", compare))
    elif isinstance(node, ast.BoolOp):
        boolean = copy.deepcopy(node)
        boolean.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        found.append(("boolean", boolean))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        operator = "drop-not" if isinstance(node.op, ast.Not) else "drop-minus"
        found.append((operator, copy.deepcopy(node.operand)))
    elif (
        isinstance(node, ast.BinOp)
        and type(node.op) in ARITHMETIC_SWAPS
        and not (_is_text(node.left) or _is_text(node.right))
    ):
        arithmetic = copy.deepcopy(node)
        arithmetic.op = ARITHMETIC_SWAPS[type(node.op)]()
        found.append(("arithmetic", arithmetic))
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"min", "max"}
    ):
        call = copy.deepcopy(node)
        call.func = ast.Name("max" if node.func.id == "min" else "min", ast.Load())
        found.append(("min-max", call))
    return found


def find_mutants(module: str, source: str) -> list[Mutant]:
    """Every mutant of `source` (the text of `module`), in the order of the text."""
    finder = _Finder(module, source)
    finder.visit(ast.parse(source), (), None)
    mutants = sorted(finder.found, key=lambda m: (m.line, m.path))
    seen: dict[str, int] = {}
    numbered = []
    for mutant in mutants:
        seen[mutant.key] = seen.get(mutant.key, 0) + 1
        numbered.append(_renumbered(mutant, seen[mutant.key]))
    return numbered


def _renumbered(mutant: Mutant, occurrence: int) -> Mutant:
    fields = {name: getattr(mutant, name) for name in Mutant.__dataclass_fields__}
    return Mutant(**{**fields, "occurrence": occurrence})


def _node_at(tree: ast.AST, path: Path) -> ast.AST:
    node = tree
    for field, index in path:
        node = getattr(node, field) if index is None else getattr(node, field)[index]
    return node


def _replace_at(tree: ast.AST, path: Path, new: ast.AST) -> None:
    holder = _node_at(tree, path[:-1])
    field, index = path[-1]
    if index is None:
        setattr(holder, field, new)
    else:
        getattr(holder, field)[index] = new


class MutationError(Exception):
    """A mutant whose text does not parse into the mutated tree (a bug of this tool)."""


def apply(source: str, mutant: Mutant) -> str:
    """The text of the module with `mutant` in it, line numbers kept."""
    tree = ast.parse(source)
    node = t.cast("ast.stmt | ast.expr", _node_at(tree, mutant.path))
    # Offsets of the syntax tree count bytes of UTF-8.
    line_starts = [0]
    for line in source.encode().splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    start = line_starts[node.lineno - 1] + node.col_offset
    end = line_starts[t.cast("int", node.end_lineno) - 1] + t.cast("int", node.end_col_offset)
    text = "pass" if isinstance(mutant.replacement, ast.Pass) else ast.unparse(mutant.replacement)
    if not mutant.statement:
        text = f"({text})"
    raw = source.encode()
    mutated = (raw[:start] + text.encode() + raw[end:]).decode()
    expected = copy.deepcopy(tree)
    _replace_at(expected, mutant.path, copy.deepcopy(mutant.replacement))
    try:
        got = ast.dump(ast.parse(mutated))
    except SyntaxError as exc:
        raise MutationError(f"{mutant.ident}: the mutated text does not parse: {exc}") from None
    if got != ast.dump(expected):
        raise MutationError(f"{mutant.ident}: the mutated text is not the mutated tree")
    return mutated


def function_spans(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line with decorators, last line) of every function and class."""
    spans: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = (*scope, child.name)
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                spans.append((".".join(name), first, t.cast("int", child.end_lineno)))
                visit(child, name)
            else:
                visit(child, scope)

    visit(ast.parse(source), ())
    return spans


def references(source: str) -> dict[str, set[str]]:
    """The names each function uses (its nested functions' included), by qualified name.

    A method uses its class's name too: `cls(...)` builds the class like its name does.
    """
    used: dict[str, set[str]] = {}

    def visit(
        node: ast.AST, scope: tuple[str, ...], functions: list[str], classes: set[str]
    ) -> None:
        for field, child in _children(node):
            if field in {"decorator_list", "annotation", "returns"}:
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = ".".join((*scope, child.name))
                used.setdefault(name, set()).update(classes)
                visit(child, (*scope, child.name), [*functions, name], classes)
            elif isinstance(child, ast.ClassDef):
                visit(child, (*scope, child.name), functions, {*classes, child.name})
            else:
                if isinstance(child, ast.Name):
                    for function in functions:
                        used[function].add(child.id)
                visit(child, scope, functions, classes)

    visit(ast.parse(source), (), [], set())
    return used


def _children(node: ast.AST) -> t.Iterator[tuple[str, ast.AST]]:
    for field, value in ast.iter_fields(node):
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield field, child
