"""Fixtures of the report tests: real runs of a small recipe, headless Chromium (Debian's
``chromium`` driven by Playwright, no browser download) and a folder of screenshots kept as
test artefacts (its path is printed)."""
from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from report_helpers import CHROMIUM, RECIPE, SECRET, radioflow

_SHOTS: list[Path] = []


@pytest.fixture(scope="session")
def shots() -> Path:
    """Where screenshots go: a folder of its own under the system temp dir (pytest prunes its own
    base temp dirs as other sessions start); its path is printed at the end of the run."""
    path = Path(tempfile.mkdtemp(prefix="radioflow-report-screenshots-"))
    _SHOTS.append(path)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in _SHOTS:
        terminalreporter.write_line(f"report screenshots: {path} ({len(list(path.iterdir()))} files)")


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workdir with two real runs of tests/report/recipes/small.yml: ``small`` (ok, with a
    secret parameter on the command line) and ``fails`` (second step raises)."""
    work = tmp_path_factory.mktemp("report-runs")
    radioflow("run", str(RECIPE), f"api_token={SECRET}", cwd=work)
    bad = radioflow("run", str(RECIPE), "fails", cwd=work, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    with sqlite3.connect(work / ".radioflow" / "runs.db") as db:
        ids = {recipe: rid for rid, recipe in db.execute("SELECT id, recipe FROM runs")}
    return {"workdir": work, "ok": ids["small"], "failed": ids["fails"]}


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian package) through Playwright."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    yield pg
    context.close()
