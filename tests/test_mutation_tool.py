"""The mutation tool itself (scripts/mutation): it finds, applies and judges mutants rightly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest

from tests.mutation.lists import format_item, read_list
from tests.mutation.mutants import apply, find_mutants
from tests.singer_run import REPO

if t.TYPE_CHECKING:
    from pathlib import Path

SAMPLE = textwrap.dedent(
    '''\
    """A sample module: a guard whose boundary no test checks, and code no test runs."""

    LIMIT = 18


    def is_adult(age: int) -> bool:
        """Whether `age` is at least the limit."""
        return not age < LIMIT


    def unused(value: int) -> int:
        return value * 2
    '''
)
SAMPLE_TEST = textwrap.dedent(
    """\
    from sample import is_adult


    def test_adults_and_children():
        assert is_adult(30)
        assert not is_adult(3)
    """
)


def mutant_named(key: str) -> t.Any:
    return next(m for m in find_mutants("sample.py", SAMPLE) if m.key == key)


def test_mutants_are_named_by_what_they_change_and_keep_line_numbers() -> None:
    keys = [m.key for m in find_mutants("sample.py", SAMPLE)]

    assert keys == [
        "<module> | constant | LIMIT = 18 -> LIMIT = 19",
        "is_adult | drop-return | return not age < LIMIT -> return None",
        "is_adult | drop-not | not age < LIMIT -> age < LIMIT",
        "is_adult | compare | age < LIMIT -> age <= LIMIT",
        "unused | drop-return | return value * 2 -> return None",
        "unused | arithmetic | value * 2 -> value / 2",
        "unused | constant | value * 2 -> value * 3",
    ]
    mutated = apply(SAMPLE, mutant_named("is_adult | compare | age < LIMIT -> age <= LIMIT"))
    assert mutated.splitlines()[7] == "    return not (age <= LIMIT)"
    assert len(mutated.splitlines()) == len(SAMPLE.splitlines())


def test_an_edit_elsewhere_in_the_function_keeps_the_names() -> None:
    edited = SAMPLE.replace(
        '    """Whether `age` is at least the limit."""\n',
        '    """Whether `age` is at least the limit."""\n    print("checking")\n',
    )
    before = {m.key for m in find_mutants("sample.py", SAMPLE)}
    after = {m.key for m in find_mutants("sample.py", edited)}

    assert before <= after
    assert after - before == {"is_adult | drop-call | print('checking') -> pass"}


def test_what_no_test_could_tell_apart_is_left_alone() -> None:
    source = textwrap.dedent(
        """\
        import logging
        import typing as t
        if t.TYPE_CHECKING:
            X = 1
        def f(x: int = 2) -> str:
            assert x > 0
            logging.getLogger().info("x is %d", x)
            return f"{x + 1}"  # pragma: no mutate
        """
    )

    keys = [m.key for m in find_mutants("m.py", source)]

    assert keys == ["f | constant | x=2 -> x=3"]


def one_test_trace(function: str) -> str:
    """A trace (as source) of the sample's one test, `nodeid`, that ran `function`."""
    return f"""Trace(
        seconds={{nodeid: 0.01}},
        functions={{"sample.py | {function}": {{nodeid}}}},
        modules={{"sample.py": {{nodeid}}}},
        lines={{("sample.py", 8): {{nodeid}}}},
        imported=[],
        used_by={{"LIMIT": {{"sample.py | is_adult"}}, "PAUSE": {{"sample.py | pause"}}}},
    )"""


def run_sample_mutants(
    tmp_path: Path,
    sample: str = SAMPLE,
    sample_test: str = SAMPLE_TEST,
    trace: str = one_test_trace("is_adult"),
    settings: str = "",
) -> dict[str, dict[str, t.Any]]:
    """Run every mutant of the sample in a copy at `tmp_path`, in a process of its own."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "sample.py").write_text(sample)
    (tree / "test_sample.py").write_text(sample_test)
    test_name = sample_test.split("def ", 1)[1].split("(", 1)[0]
    nodeid = f"test_sample.py::{test_name}"
    script = textwrap.dedent(
        f"""\
        import json
        from pathlib import Path
        from tests.mutation import config
        from tests.mutation.mutants import find_mutants
        from tests.mutation.runner import Trace, run_mutants
        {settings}
        tree, nodeid = Path({str(tree)!r}), {nodeid!r}
        trace = {textwrap.indent(trace, " " * 8).lstrip()}
        mutants = find_mutants("sample.py", (tree / "sample.py").read_text())
        outcomes = run_mutants(mutants, trace, [tree], lambda _: None, work=tree.parent)
        print(json.dumps({{o.mutant.key: o.to_json() for o in outcomes}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        # The sample's test needs no plugin: the SDK's and Hypothesis's would only be slow.
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        check=True,
    )
    return t.cast("dict[str, dict[str, t.Any]]", json.loads(done.stdout.splitlines()[-1]))


def test_the_run_tells_killed_survived_and_uncovered_mutants_apart(tmp_path: Path) -> None:
    outcomes = run_sample_mutants(tmp_path)

    assert {key: o["status"] for key, o in outcomes.items()} == {
        "is_adult | drop-return | return not age < LIMIT -> return None": "killed",
        "is_adult | drop-not | not age < LIMIT -> age < LIMIT": "killed",
        # Is 18 an adult? The test does not ask, so the boundary survives.
        "<module> | constant | LIMIT = 18 -> LIMIT = 19": "survived",
        "is_adult | compare | age < LIMIT -> age <= LIMIT": "survived",
        "unused | drop-return | return value * 2 -> return None": "uncovered",
        "unused | arithmetic | value * 2 -> value / 2": "uncovered",
        "unused | constant | value * 2 -> value * 3": "uncovered",
    }
    dropped = outcomes["is_adult | drop-not | not age < LIMIT -> age < LIMIT"]
    assert dropped["killed_by"] == "test_sample.py::test_adults_and_children"
    # The copy holds the unmutated module again.
    assert (tmp_path / "tree" / "sample.py").read_text() == SAMPLE


VARIANTS_TEST = textwrap.dedent(
    """\
    import pytest
    from sample import is_adult


    @pytest.mark.parametrize("age", [30, 18])
    def test_adults(age):
        assert is_adult(age)
    """
)
# Both variants ran the very same line; the one that asks about 18 is the slower.
VARIANTS_TRACE = """Trace(
    seconds={nodeid + "[30]": 0.01, nodeid + "[18]": 0.02},
    functions={"sample.py | is_adult": {nodeid + "[30]", nodeid + "[18]"}},
    modules={"sample.py": {nodeid + "[30]", nodeid + "[18]"}},
    lines={("sample.py", 8): {nodeid + "[30]", nodeid + "[18]"}},
    imported=[],
    used_by={"LIMIT": {"sample.py | is_adult"}},
    signatures={
        (nodeid + "[30]", "sample.py"): frozenset({8}),
        (nodeid + "[18]", "sample.py"): frozenset({8}),
    },
)"""


def test_a_mutant_the_fastest_variant_misses_runs_the_other_variants_before_it_survives(
    tmp_path: Path,
) -> None:
    outcomes = run_sample_mutants(tmp_path, sample_test=VARIANTS_TEST, trace=VARIANTS_TRACE)

    boundary = outcomes["is_adult | compare | age < LIMIT -> age <= LIMIT"]
    assert boundary["status"] == "killed"
    assert boundary["killed_by"] == "test_sample.py::test_adults[18]"
    assert boundary["tests"] == 2  # the fastest variant, then the one it left out
    # Killed by the fastest variant alone: the other is never run.
    dropped = outcomes["is_adult | drop-not | not age < LIMIT -> age < LIMIT"]
    assert (dropped["killed_by"], dropped["tests"]) == ("test_sample.py::test_adults[30]", 1)


PAUSING = textwrap.dedent(
    '''\
    """A sample whose constant, mutated, makes its test wait for a second."""

    import time

    PAUSE = 0


    def pause() -> None:
        """Wait PAUSE seconds."""
        time.sleep(PAUSE)
    '''
)
PAUSING_TEST = "from sample import pause\n\n\ndef test_pause():\n    pause()\n"


def test_a_test_that_runs_past_its_own_budget_stops_the_mutant_at_once(tmp_path: Path) -> None:
    # Each test may take 0.1 s plus three times its traced 0.01 s; the mutant's whole budget
    # stays at 30 s, so only the per-test clock can stop the one-second wait this early.
    settings = "config.TEST_TIMEOUT_BASE_SECONDS = 0.1"
    outcomes = run_sample_mutants(
        tmp_path, PAUSING, PAUSING_TEST, one_test_trace("pause"), settings
    )

    waited = outcomes["<module> | constant | PAUSE = 0 -> PAUSE = 1"]
    assert waited["status"] == "timeout"
    assert waited["detail"] == (
        "timeout test_sample.py::test_pause (0.1 s): one test ran past its budget"
    )
    assert waited["killed_by"] is None


@pytest.mark.parametrize(
    "key",
    ["f | compare | a < b -> a <= b", "f | drop-call | print(`x`) -> pass"],
    ids=["plain", "with a backtick"],
)
def test_a_listed_mutant_reads_back_with_its_reason(tmp_path: Path, key: str) -> None:
    listed = tmp_path / "survivors.md"
    listed.write_text(
        f"# Survivors\n\n## m.py\n\n{format_item(key, 'equivalent: the bound is')}\n"
        "  never reached.\n"
    )

    entries = read_list(listed)

    assert list(entries) == [f"m.py | {key}"]
    assert entries[f"m.py | {key}"].reason == "equivalent: the bound is never reached."
