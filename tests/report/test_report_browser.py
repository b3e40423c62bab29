"""The HTML report of real runs, opened in headless Chromium: what a person sees."""
from __future__ import annotations

import sqlite3

import numpy as np
from report_helpers import SECRET, bands, colour_rows, pixels, radioflow

from radioflow.report.timeline import STATE_COLOURS


def _report(runs: dict, which: str) -> str:
    """``radioflow report RUN -o FILE`` (once per run and session); the file's URL."""
    out = runs["workdir"] / f"report-{which}.html"
    if not out.exists():
        radioflow("report", runs[which], "-C", str(runs["workdir"]), "-o", str(out), cwd=runs["workdir"])
    return out.as_uri()


def _cab_steps(runs: dict, which: str) -> list[tuple[str, str]]:
    with sqlite3.connect(runs["workdir"] / ".radioflow" / "runs.db") as db:
        return list(db.execute("SELECT fqname, status FROM steps WHERE run_id=? AND cab NOT LIKE 'recipe:%'",
                               (runs[which],)))


def _non_blank(png: bytes) -> float:
    """Fraction of pixels that are neither white nor the page background."""
    rgb = pixels(png).astype(np.int32)
    return float(np.mean(np.abs(rgb - 255).max(axis=-1) > 30))


def test_timeline_has_one_bar_per_step(runs, page, shots):
    page.goto(_report(runs, "ok"))
    steps = _cab_steps(runs, "ok")
    assert len(steps) == 7                   # sky, simulate, image, predict, solve, tag-0, tag-1
    timeline = page.locator("#timeline")
    timeline.scroll_into_view_if_needed()
    png = timeline.screenshot(path=str(shots / "timeline-ok.png"))
    rows = colour_rows(pixels(png), list(STATE_COLOURS.values()))
    assert bands(rows) == len(steps)
    # every bar is green (all steps ok) and the step table names every step
    green = colour_rows(pixels(png), [STATE_COLOURS["ok"]])
    assert bands(green) == len(steps)
    table = page.locator("#step-table").inner_text()
    for fqname, _ in steps:
        assert fqname.split(".", 1)[1] in table


def test_images_uv_and_gains_render(runs, page, shots):
    page.goto(_report(runs, "ok"))
    page.screenshot(path=str(shots / "report-ok.png"), full_page=True)
    images = page.locator("figure.image-product img")
    assert images.count() == 4               # model, residual, restored, psf of the image step
    for i in range(images.count()):
        img = images.nth(i)
        img.scroll_into_view_if_needed()
        assert img.is_visible()
        assert img.evaluate("e => e.complete && e.naturalWidth > 100")
        png = img.screenshot(path=str(shots / f"image-{i}.png"))
        assert _non_blank(png) > 0.2, f"image {i} looks blank"
    captions = page.locator("figure.image-product figcaption").all_inner_texts()
    assert any("img-restored.fits" in c and "peak" in c for c in captions)
    uv = page.locator("figure.uv-product img")
    assert uv.count() == 1
    assert _non_blank(uv.first.screenshot(path=str(shots / "uv.png"))) > 0.02
    gains = page.locator("figure.gain-product")
    assert gains.count() == 1                # the solutions; the injected truth is not a product of its own
    assert _non_blank(gains.locator("img").screenshot(path=str(shots / "gains.png"))) > 0.05
    assert "phase error vs truth" in gains.inner_text()
    assert page.locator("#imaging-metrics").is_visible()
    assert "dynamic range" in page.locator("#imaging-metrics").inner_text()


def test_failed_step_shows_its_error(runs, page, shots):
    page.goto(_report(runs, "failed"))
    page.screenshot(path=str(shots / "report-failed.png"), full_page=False)
    failure = page.locator(".failed-step")
    assert failure.count() == 1 and failure.is_visible()
    text = failure.inner_text()
    assert "flux-scale" in text and "no entry for 3C286" in text
    assert "failed" in page.locator("h1").inner_text()
    detail = page.locator("details.step-detail[open]")   # the failed step's details are open, with its log
    assert detail.count() == 1 and "about to fail" in detail.locator("pre.log").inner_text()
    png = page.locator("#timeline").screenshot(path=str(shots / "timeline-failed.png"))
    assert bands(colour_rows(pixels(png), [STATE_COLOURS["failed"]])) == 1
    assert bands(colour_rows(pixels(png), [STATE_COLOURS["ok"]])) == 1


def test_secrets_are_masked(runs, page):
    url = _report(runs, "ok")
    html = (runs["workdir"] / "report-ok.html").read_text()
    assert SECRET not in html
    page.goto(url)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    seen = page.locator("body").inner_text()
    assert SECRET not in seen
    params = page.locator("#run-params").inner_text()
    assert "api_token" in params and "***" in params
    assert "api_token=***" in page.locator("body").inner_text()      # the command line, masked


def test_report_is_self_contained(runs, browser):
    url = _report(runs, "ok")
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    pg = context.new_page()
    pg.goto(url)
    pg.wait_for_load_state("load")
    context.close()
    assert [r for r in requests if not r.startswith(("file:", "data:"))] == []


def test_report_cli_defaults_and_errors(runs, tmp_path):
    proc = radioflow("report", "-C", str(runs["workdir"]), cwd=tmp_path)
    latest = runs["workdir"] / ".radioflow" / "reports" / f"{runs['failed']}.html"   # the latest run
    assert str(latest) in proc.stdout and latest.stat().st_size > 10_000
    bad = radioflow("report", "no-such-run", "-C", str(runs["workdir"]), cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "No run 'no-such-run'" in bad.stderr and "Traceback" not in bad.stderr
    empty = radioflow("report", "-C", str(tmp_path), cwd=tmp_path, check=False)
    assert empty.returncode == 2 and "no .radioflow/runs.db" in empty.stderr


def test_runs_write_their_report_and_record_no_secret(runs):
    reports = runs["workdir"] / ".radioflow" / "reports"
    for which in ("ok", "failed"):                       # written at the end of every run, failed ones too
        path = reports / f"{runs[which]}.html"
        assert path.stat().st_size > 10_000
        assert SECRET not in path.read_text()
    with sqlite3.connect(runs["workdir"] / ".radioflow" / "runs.db") as db:
        argv = db.execute("SELECT argv FROM runs WHERE id=?", (runs["ok"],)).fetchone()[0]
    assert "api_token=***" in argv and SECRET not in argv


def test_no_report_skips_it(tmp_path):
    from report_helpers import RECIPE

    proc = radioflow("run", str(RECIPE), "fails", "--no-report", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert not (tmp_path / ".radioflow" / "reports").exists()
    assert "report:" not in proc.stdout + proc.stderr
