"""Fixtures of the Stimela conformance tests and the results table in the terminal summary."""
from __future__ import annotations

from pathlib import Path

import pytest
from conformance_cases import RESULTS, Outcome
from conformance_sources import STIMELA, extract, sdist


@pytest.fixture(scope="session")
def stimela_source(tmp_path_factory) -> Path:
    """The unpacked stimela sdist (downloaded once into the cache directory)."""
    return extract(sdist(*STIMELA), tmp_path_factory.mktemp("stimela-sdist"))


def _row(o: Outcome) -> tuple[str, ...]:
    c = o.case
    if o.skipped:
        return c.id, c.exit, "-", "-", "SKIP", o.skipped
    got = str(o.returncode)
    checks = f"{len(c.checks) - len(o.failed_checks)}/{len(c.checks)}" if c.checks else "-"
    verdict = "as stimela" if o.as_stimela else ("DIFFERS (known)" if c.known else "DIFFERS")
    why = "" if o.as_stimela else ("; ".join(([] if o.same_exit else [f"exit {got}, stimela {c.exit}"])
                                             + o.failed_checks[:2]))
    return c.id, c.exit, got, checks, verdict, why[:110]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("Stimela 2.1.4 conformance: its own test recipes run through radioflow")
    rows = [("case", "exit(stimela)", "exit(radioflow)", "checks", "verdict", "difference")]
    rows += [_row(o) for o in RESULTS]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        tr.write_line("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
    runs = [o for o in RESULTS if not o.skipped]
    same = sum(o.as_stimela for o in runs)
    same_exit = sum(o.same_exit for o in runs)
    skipped = len(RESULTS) - len(runs)
    tr.write_line(f"radioflow behaves as Stimela in {same} of {len(runs)} runs (same exit status in "
                  f"{same_exit}); {skipped} case(s) skipped (not runnable here, reasons above)")
