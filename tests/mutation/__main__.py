"""scripts/mutation: mutate the modules that keep the promises and see which bugs the tests miss.

Usage: scripts/mutation [MODULE ...] [--max-mutants N] [--only TEXT] [--jobs N] [--list]
       [--show ID] [--fresh-trace]

Prints each mutant's fate, then the score per module and in total, writes the outcomes to
.work/mutation/results.json and the survivors to .work/mutation/survivors.json, and compares
the survivors with tests/mutation/survivors.md (equivalent mutants, each with its reason)
and tests/mutation/gaps.md (mutants no test kills yet). Exits 1 when a survivor is not
listed as equivalent, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
import typing as t
from pathlib import Path

from tests.mutation import config
from tests.mutation.lists import ListError, format_item, read_list
from tests.mutation.mutants import Mutant, apply, find_mutants
from tests.mutation.runner import (
    ERROR,
    KILLED,
    REPO,
    SURVIVED,
    TIMEOUT,
    UNCOVERED,
    WORK,
    Outcome,
    Progress,
    RunError,
    git_files,
    make_copy,
    preload,
    run_mutants,
    trace_tests,
)

if t.TYPE_CHECKING:
    from collections.abc import Sequence


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/mutation",
        description=(
            "Mutation run over the modules of tests/mutation/config.py: each mutant (one small "
            "bug) is run against the tests that execute its code, stopped at the first "
            "failure. Prints the score per module and in total; exits 1 when a survivor is "
            "neither killed nor listed as equivalent in tests/mutation/survivors.md."
        ),
        epilog=(
            "Outcomes: killed (a test failed), timeout (the tests ran past their time: counted "
            "as killed), survived (every test passed), uncovered (no test runs that code; a "
            "survivor). The score is (killed + timeout) / mutants. Files: .work/mutation/"
            "results.json (every mutant), .work/mutation/survivors.json and survivors.md "
            "(the survivors, as the committed list writes them)."
        ),
    )
    parser.add_argument(
        "modules",
        nargs="*",
        metavar="MODULE",
        help="run only these modules (a path or its end, e.g. job.py or streams/enrichment.py)",
    )
    parser.add_argument(
        "--max-mutants",
        type=int,
        metavar="N",
        help="a quick check: at most N mutants per module, spread evenly over it",
    )
    parser.add_argument("--only", metavar="TEXT", help="run only the mutants whose id holds TEXT")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="mutants run at once (default: 2, or 1 on a single core)",
    )
    parser.add_argument(
        "--every-variant",
        action="store_true",
        help=(
            "run every variant of a parametrized test from the start (by default, of the "
            "variants that ran the very same lines of the mutated module the fastest runs "
            "first, and the others only if the mutant survives it)"
        ),
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help=(
            "keep the outcomes .work/mutation/results.jsonl holds from an interrupted run on "
            "the same tree, and run only the other mutants"
        ),
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--show", metavar="ID", help="print the diff of the mutant ID, run nothing")
    parser.add_argument(
        "--fresh-trace",
        action="store_true",
        help="trace the tests again even when the package and the tests did not change",
    )
    return parser.parse_args(argv)


def chosen_modules(wanted: Sequence[str]) -> list[str]:
    """The configured modules that `wanted` names (all of them when it names none)."""
    if not wanted:
        return list(config.MODULES)
    chosen = []
    for name in wanted:
        matches = [m for m in config.MODULES if m == name or m.endswith(f"/{name}")]
        if not matches:
            known = ", ".join(config.MODULES)
            raise RunError(f"{name} is not a module of the mutation run (known: {known})")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def mutants_of(modules: Sequence[str], args: argparse.Namespace) -> list[Mutant]:
    """The mutants to run, after --only and --max-mutants."""
    mutants = []
    for module in modules:
        found = find_mutants(module, (REPO / module).read_text(encoding="utf-8"))
        if args.only:
            found = [m for m in found if args.only in m.ident]
        if args.max_mutants is not None and len(found) > args.max_mutants:
            step = len(found) / max(args.max_mutants, 1)
            found = [found[int(i * step)] for i in range(args.max_mutants)]
        mutants += found
    return mutants


def show(ident: str) -> int:
    """Print the diff of one mutant."""
    for module in config.MODULES:
        source = (REPO / module).read_text(encoding="utf-8")
        for mutant in find_mutants(module, source):
            if ident in {mutant.ident, mutant.key}:
                diff = difflib.unified_diff(
                    source.splitlines(keepends=True),
                    apply(source, mutant).splitlines(keepends=True),
                    f"a/{module}",
                    f"b/{module}",
                )
                sys.stdout.writelines(diff)
                return 0
    print(f"scripts/mutation: no mutant is named {ident!r} (--list names them)", file=sys.stderr)
    return 2


def score_table(outcomes: Sequence[Outcome], modules: Sequence[str]) -> list[str]:
    """The score per module and in total."""
    lines = [
        f"{'module':40} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} "
        f"{'uncovered':>9} {'error':>5} {'score':>6}"
    ]

    def row(name: str, group: Sequence[Outcome]) -> str:
        count = {s: sum(o.status == s for o in group) for s in (KILLED, TIMEOUT, SURVIVED)}
        uncovered = sum(o.status == UNCOVERED for o in group)
        errors = sum(o.status == ERROR for o in group)
        scored = len(group) - errors
        score = (count[KILLED] + count[TIMEOUT]) / scored if scored else 0.0
        return (
            f"{name:40} {len(group):7} {count[KILLED]:6} {count[TIMEOUT]:7} "
            f"{count[SURVIVED]:8} {uncovered:9} {errors:5} {score:6.1%}"
        )

    for module in modules:
        lines.append(row(module, [o for o in outcomes if o.mutant.module == module]))
    lines.append(row("total", outcomes))
    return lines


def compare_with_lists(
    survivors: Sequence[Outcome], modules: Sequence[str], *, complete: bool
) -> tuple[list[str], bool]:
    """Lines about survivors against the committed lists; True when every one is listed."""
    equivalent = read_list(REPO / config.SURVIVORS_FILE)
    gaps = read_list(REPO / config.GAPS_FILE)
    lines = []
    for entry in equivalent.values():
        if not entry.reason:
            lines.append(f"{config.SURVIVORS_FILE}:{entry.line}: {entry.key!r} gives no reason")
    listed = [o for o in survivors if o.mutant.ident in equivalent]
    known = [o for o in survivors if o.mutant.ident in gaps and o.mutant.ident not in equivalent]
    new = [o for o in survivors if o.mutant.ident not in equivalent and o.mutant.ident not in gaps]
    lines.append(
        f"Survivors: {len(survivors)}: {len(listed)} listed as equivalent "
        f"({config.SURVIVORS_FILE}), {len(known)} known gaps ({config.GAPS_FILE}), "
        f"{len(new)} in neither."
    )
    for title, group in (("Known gaps", known), ("In neither list", new)):
        if group:
            lines.append(f"{title}:")
            lines += [f"  {o.mutant.module}:{o.mutant.line}: {o.mutant.key}" for o in group]
    if complete:
        surviving = {o.mutant.ident for o in survivors}
        stale = [
            e
            for e in [*equivalent.values(), *gaps.values()]
            if e.module in modules and e.ident not in surviving
        ]
        if stale:
            lines.append("Listed but no longer surviving (remove them from the list):")
            lines += [f"  {e.module} | {e.key}" for e in stale]
    return lines, not new and not known and all(e.reason for e in equivalent.values())


def write_results(outcomes: Sequence[Outcome]) -> None:
    """Every outcome, and the survivors alone, as JSON and as list items."""
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps([o.to_json() for o in outcomes], indent=1))
    survivors = [o for o in outcomes if o.status in {SURVIVED, UNCOVERED}]
    (WORK / "survivors.json").write_text(json.dumps([o.to_json() for o in survivors], indent=1))
    lines: list[str] = []
    module = None
    for outcome in sorted(survivors, key=lambda o: (o.mutant.module, o.mutant.line)):
        if outcome.mutant.module != module:
            module = outcome.mutant.module
            lines += ["", f"## {module}", ""]
        lines.append(format_item(outcome.mutant.key, f"(line {outcome.mutant.line})"))
    (WORK / "survivors.md").write_text("\n".join(lines).lstrip() + "\n")


def main(argv: Sequence[str]) -> int:
    """Run the mutation run as the command line asks."""
    args = parse_args(argv)
    if args.show:
        return show(args.show)
    modules = chosen_modules(args.modules)
    mutants = mutants_of(modules, args)
    if args.list:
        for mutant in mutants:
            print(f"{mutant.module}:{mutant.line}: {mutant.key}")
        print(f"{len(mutants)} mutants")
        return 0
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    files = git_files()
    trees = [WORK / f"tree-{i}" for i in range(max(1, args.jobs))]
    for tree in trees:
        make_copy(tree, files)
    trace = trace_tests(trees, files, fresh=args.fresh_trace)
    traced = "reused" if trace.reused else f"took {trace.took:.0f} s"
    print(f"Tests traced ({traced}): {len(trace.seconds)} tests; {len(mutants)} mutants to run.")
    preload(trace.imported)
    journal = WORK / "results.jsonl"
    earlier = resumed(journal, trace.key, mutants) if args.resume else []
    if not args.resume:
        journal.write_text("")
    done = {o.mutant.ident for o in earlier}
    if earlier:
        print(f"Resuming: {len(earlier)} mutants have an outcome on this tree already.")
    progress = Progress(len(mutants) - len(earlier), journal, trace.key)
    to_run = [m for m in mutants if m.ident not in done]
    outcomes = earlier + run_mutants(
        to_run, trace, trees, progress.note, every_variant=args.every_variant
    )
    write_results(outcomes)
    complete = args.only is None and args.max_mutants is None
    survivors = [o for o in outcomes if o.status in {SURVIVED, UNCOVERED}]
    lines, all_listed = compare_with_lists(survivors, modules, complete=complete)
    errors = [o for o in outcomes if o.status == ERROR]
    print()
    print("\n".join(score_table(outcomes, modules)))
    print("\n".join(lines))
    for outcome in errors:
        print(f"ERROR {outcome.mutant.ident}: {outcome.detail}")
    elapsed = time.monotonic() - started
    print(f"Run time {elapsed / 60:.1f} min with {len(trees)} job(s); load {load()}.")
    print(f"Outcomes: {(WORK / 'results.json').relative_to(REPO)}")
    return 0 if all_listed and not errors else 1


def resumed(journal: Path, trace_key: str, mutants: Sequence[Mutant]) -> list[Outcome]:
    """The outcomes the journal holds for `mutants` on the same tree (the same trace)."""
    by_ident = {m.ident: m for m in mutants}
    outcomes = {}
    lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
    for line in lines:
        row = json.loads(line)
        mutant = by_ident.get(row["id"])
        if mutant is not None and row.get("trace") == trace_key:
            outcomes[mutant.ident] = Outcome(
                mutant, row["status"], row["seconds"], row["tests"], row["killed_by"], row["detail"]
            )
    return list(outcomes.values())


def load() -> str:
    """The load averages of the machine (1, 5, 15 minutes)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (RunError, ListError) as exc:
        print(f"scripts/mutation: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "scripts/mutation: interrupted; the outcomes so far are in "
            ".work/mutation/results.jsonl, and --resume goes on from them",
            file=sys.stderr,
        )
        sys.exit(130)
