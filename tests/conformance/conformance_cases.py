"""The Stimela conformance table (``stimela_cases.yml``) and how one of its runs is judged.

A case is one ``stimela ...`` command from Stimela 2.1.4's own tests. It is run as the same
argument list with ``stimela`` replaced by ``python -m radioflow``, in a working copy of the
sdist's ``tests/stimela_tests`` (with ``tests/`` on ``PYTHONPATH``, as pytest gives Stimela's
tests). Output is stdout and stderr together: Stimela writes its log, errors included, to the
console, radioflow writes errors to stderr.
"""
from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TABLE = Path(__file__).with_name("stimela_cases.yml")

#: Results of the runs made in this session, for the terminal summary (conftest.py).
RESULTS: list[Outcome] = []


@dataclass(frozen=True)
class Check:
    """``verify_output(output, *regexes)`` of Stimela's tests and the count the test asserts."""

    regexes: tuple[str, ...]
    count: str   # ">=1", or an exact number as text ("0", "5")

    def matches(self, output: str) -> int:
        folded = re.sub(r"\s+", " ", output)
        return len(re.findall("(.*?)".join(self.regexes), folded))

    def holds(self, output: str) -> bool:
        n = self.matches(output)
        return n >= 1 if self.count == ">=1" else n == int(self.count)

    def describe(self) -> str:
        want = "present" if self.count == ">=1" else ("absent" if self.count == "0" else f"{self.count}x")
        return f"{' ... '.join(self.regexes)!r} {want}"


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    source: str
    cmd: str = ""
    exit: str = "0"          # "0", "1", "nonzero" or "any"
    checks: tuple[Check, ...] = ()
    setup: tuple[str, ...] = ()
    skip: str = ""
    known: str = ""          # a difference from Stimela not fixed yet (xfail, strict)

    def argv(self) -> list[str]:
        words = shlex.split(self.cmd)
        assert words[0] == "stimela", self.cmd
        return [sys.executable, "-m", "radioflow", *words[1:]]

    def exit_ok(self, code: int) -> bool:
        if self.exit == "any":
            return True
        if self.exit == "nonzero":
            return code != 0
        return code == int(self.exit)


@dataclass
class Outcome:
    case: Case
    returncode: int | None = None
    failed_checks: list[str] = field(default_factory=list)
    output: str = ""
    skipped: str = ""

    @property
    def same_exit(self) -> bool:
        return self.returncode is not None and self.case.exit_ok(self.returncode)

    @property
    def as_stimela(self) -> bool:
        return self.same_exit and not self.failed_checks


def _checks(raw: Any) -> tuple[Check, ...]:
    return tuple(Check(tuple(c["all"]), str(c["count"])) for c in raw or ())


def load_cases(path: Path = TABLE) -> list[Case]:
    """Every case of the table, the ``run_state`` section expanded to its step checks."""
    data = yaml.safe_load(path.read_text())
    known: dict[str, str] = data.get("known_differences") or {}
    cases = [
        Case(id=c["id"], group=c["group"], source=c["source"], cmd=c.get("cmd", ""), exit=str(c.get("exit", 0)),
             checks=_checks(c.get("checks")), setup=tuple(c.get("setup") or ()), skip=c.get("skip", ""),
             known=known.get(c["id"], ""))
        for c in data["cases"]
    ]
    rs = data["run_state"]
    all_steps = list(rs["all_steps"])
    for c in rs["cases"]:
        ran = set(c["steps"])
        checks = [Check((f"running step recipe.{s}",), ">=1") for s in all_steps if s in ran]
        checks += [Check((f"running step recipe.{s}",), "0") for s in all_steps if s not in ran]
        cid = "run-state-" + c["id"].replace("_", "-")
        cases.append(Case(id=cid, group="run-state", source=c["source"], cmd=f"{rs['base']} {c['args']}".strip(),
                          exit="0", checks=tuple(checks), known=known.get(cid, "")))
    return cases


def apply_setup(step: str, cwd: Path) -> None:
    """One ``setup`` action of a case: ``rm GLOB``, ``touch FILE`` or ``mkdir DIR``."""
    verb, arg = step.split(None, 1)
    if verb == "rm":
        for name in glob.glob(str(cwd / arg)):
            os.remove(name)
    elif verb == "touch":
        (cwd / arg).touch()
    elif verb == "mkdir":
        (cwd / arg).mkdir(parents=True, exist_ok=True)
    else:
        raise ValueError(f"unknown setup action {step!r}")


def run_case(case: Case, cwd: Path, pythonpath: list[str], timeout: float = 180.0) -> Outcome:
    """Run ``case`` through radioflow in ``cwd`` and judge it against Stimela's expectations."""
    for step in case.setup:
        apply_setup(step, cwd)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath), "COLUMNS": "200", "NO_COLOR": "1",
           "TERM": "dumb"}
    try:
        proc = subprocess.run(case.argv(), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        code, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code, output = -1, out + f"\n[timed out after {timeout:.0f} s]"
    failed = [c.describe() + f" (found {c.matches(output)})" for c in case.checks if not c.holds(output)]
    return Outcome(case, returncode=code, failed_checks=failed, output=output)
