"""Stimela 2.1.4's own test recipes, run through ``radioflow`` with the arguments and checks of
Stimela's test files (table: ``stimela_cases.yml``). Each run must exit as Stimela's test expects
and pass that test's output checks. Results are printed as a table in the terminal summary.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from conformance_cases import RESULTS, Case, Outcome, load_cases, run_case
from conformance_sources import copy_tree

import radioflow

CASES = load_cases()
_SRC = str(Path(radioflow.__file__).resolve().parents[1])
_GROUPS: dict[str, tuple[Path, int]] = {}   # group -> (working copy, index of the next case to run)


def _group_cases(group: str) -> list[Case]:
    return [c for c in CASES if c.group == group]


def _workdir(group: str, source: Path, tmp_path_factory) -> tuple[Path, int]:
    if group not in _GROUPS:
        tests = copy_tree(source / "tests", tmp_path_factory.mktemp(f"stimela-{group}") / "tests")
        _GROUPS[group] = (tests, 0)
    return _GROUPS[group]


def test_table_covers_every_stimela_test(stimela_source):
    """Every test function of the sdist's stimela_tests/test_*.py appears in the table."""
    import ast

    listed = {c.source for c in CASES}
    missing = []
    for path in sorted((stimela_source / "tests" / "stimela_tests").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                if f"{path.name}::{node.name}" not in listed:
                    missing.append(f"{path.name}::{node.name}")
    assert not missing, f"stimela tests not in stimela_cases.yml: {missing}"
    assert sum(1 for c in CASES if not c.skip) == 77


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_stimela_recipe(case: Case, stimela_source: Path, tmp_path_factory) -> None:
    if case.skip:
        RESULTS.append(Outcome(case, skipped=case.skip))
        pytest.skip(case.skip)
    tests, nxt = _workdir(case.group, stimela_source, tmp_path_factory)
    cwd = tests / "stimela_tests"
    group = _group_cases(case.group)
    index = group.index(case)
    for earlier in group[nxt:index]:   # a case selected alone: replay the runs before it (they make its files)
        run_case(earlier, cwd, [_SRC, str(tests)])
    outcome = run_case(case, cwd, [_SRC, str(tests)])
    _GROUPS[case.group] = (tests, index + 1)
    RESULTS.append(outcome)
    problems = ([] if outcome.same_exit else [f"exit status {outcome.returncode}, Stimela's test expects {case.exit}"])
    problems += [f"output check failed: {f}" for f in outcome.failed_checks]
    if case.known:
        if not problems:
            pytest.fail(f"{case.id} now behaves as Stimela: remove it from known_differences", pytrace=False)
        pytest.xfail(f"known difference: {case.known}")
    assert not problems, (f"{case.cmd} ({case.source}) differs from Stimela:\n  " + "\n  ".join(problems)
                          + "\n--- output ---\n" + outcome.output[-4000:])
