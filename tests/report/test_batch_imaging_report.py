"""The report of the default batch-imaging run: written at the end of the run, under 20 MB, and
open in Chromium (every picture decoded) in under 2 s."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from report_helpers import bands, colour_rows, pixels, radioflow

from radioflow.report.timeline import STATE_COLOURS

BATCH = Path(__file__).resolve().parents[2] / "src" / "radioflow" / "recipes" / "batch-imaging.yml"


@pytest.mark.slow
def test_default_batch_imaging_report_is_small_and_opens_fast(tmp_path, browser, shots):
    radioflow("run", str(BATCH), "-q", cwd=tmp_path, timeout=1800)
    reports = sorted((tmp_path / ".radioflow" / "reports").glob("*.html"))
    assert len(reports) == 1
    size = reports[0].stat().st_size
    print(f"batch-imaging report: {size / 2**20:.1f} MB")
    assert size < 20 * 2**20
    fits = sorted((tmp_path / "radioflow-data").rglob("*.fits"))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(reports[0].as_uri(), wait_until="load")
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    print(f"batch-imaging report: load event after {load_ms:.0f} ms")
    assert load_ms < 2000
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("figure.image-product img").count() == len(fits)
    with sqlite3.connect(tmp_path / ".radioflow" / "runs.db") as db:
        ncab = db.execute("SELECT COUNT(*) FROM steps WHERE cab NOT LIKE 'recipe:%'").fetchone()[0]
    timeline = page.locator("#timeline")
    timeline.scroll_into_view_if_needed()
    png = timeline.screenshot(path=str(shots / "timeline-batch-imaging.png"))
    assert bands(colour_rows(pixels(png), list(STATE_COLOURS.values()))) == ncab
    page.screenshot(path=str(shots / "report-batch-imaging.png"))
    context.close()
