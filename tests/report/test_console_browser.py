"""The read-only web console (``radioflow serve``) in headless Chromium, and its access rules."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from report_helpers import SECRET, Console, bands, colour_rows, pixels, radioflow

from radioflow.report.timeline import STATE_COLOURS


@pytest.fixture(scope="module")
def console(runs):
    c = Console(runs["workdir"])
    yield c
    c.close()


def test_runs_page_lists_runs_with_state_and_report_links(console, runs, page, shots):
    page.goto(console.url)
    page.screenshot(path=str(shots / "console-runs.png"), full_page=True)
    rows = page.locator("tr.run-row")
    assert rows.count() == 2
    text = page.locator("#runs").inner_text()
    assert runs["ok"] in text and runs["failed"] in text
    failed_row = page.locator("tr.run-row", has_text=runs["failed"])
    assert "failed" in failed_row.inner_text() and "1/2" in failed_row.inner_text()   # steps ok/total
    ok_row = page.locator("tr.run-row", has_text=runs["ok"])
    assert "ok" in ok_row.inner_text() and "8/8" in ok_row.inner_text()   # 7 cab steps + the loop
    assert SECRET not in page.content()
    # the report link opens the run's report with its timeline: one bar per step
    ok_row.get_by_role("link", name="report").click()
    page.wait_for_load_state("load")
    timeline = page.locator("#timeline")
    timeline.scroll_into_view_if_needed()
    png = timeline.screenshot(path=str(shots / "console-report-timeline.png"))
    assert bands(colour_rows(pixels(png), list(STATE_COLOURS.values()))) == 7
    assert SECRET not in page.content()


def test_run_page_shows_failed_step_error(console, runs, page, shots):
    page.goto(console.url)
    page.get_by_role("link", name=runs["failed"]).click()
    page.wait_for_load_state("load")
    page.screenshot(path=str(shots / "console-run-failed.png"), full_page=True)
    row = page.locator("tr.step-row[data-state=failed]")
    assert row.count() == 1
    assert row.locator(".error").is_visible()
    assert "no entry for 3C286" in row.inner_text()
    assert page.get_by_role("link", name="Open the full report").is_visible()


def test_console_is_read_only_and_local(console, runs, page):
    req = urllib.request.Request(console.url, data=b"x=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 405
    assert console.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(console.url, timeout=10) as resp:
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    # no SDP or datalake pages unless those modules are installed
    page.goto(console.url)
    nav = page.locator("nav").inner_text()
    import importlib.util

    for mod, title in (("radioflow.ops.sdp", "SDP blocks"), ("radioflow.ops.lake", "Datalake")):
        assert (title in nav) == (importlib.util.find_spec(mod) is not None)


def test_other_address_needs_a_token(runs, tmp_path):
    proc = radioflow("serve", "-C", str(runs["workdir"]), "--host", "0.0.0.0", cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2
    assert "--token" in proc.stderr and "Traceback" not in proc.stderr


def test_token_gate(runs, page):
    token = "console-token-1234"
    c = Console(runs["workdir"], "--token", token)
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(c.url, timeout=10)
        assert err.value.code == 401
        req = urllib.request.Request(c.url + "api/runs", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200 and runs["ok"] in resp.read().decode()
        page.goto(c.url + f"?token={token}")          # once in the URL, then a cookie
        assert token not in page.url
        assert page.locator("tr.run-row").count() == 2
        page.goto(c.url)
        assert page.locator("tr.run-row").count() == 2
    finally:
        c.close()
