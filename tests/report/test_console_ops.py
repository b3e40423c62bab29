"""The console's datalake and SDP pages over radioflow's own lake and SDP state (real ingest,
real catalogue), in headless Chromium: the search returns the ingested product with its preview."""
from __future__ import annotations

import math

import numpy as np
import pytest
from report_helpers import Console, radioflow

from radioflow.ops.lake.meta import ProductIdentity, write_meta
from radioflow.science.fits import write_fits_image

MJD0 = 61000.0


def _product(directory, name: str, ra: float, dec: float) -> None:
    """A small FITS image at (ra, dec) deg with its ObsCore .meta, staged for ingestion."""
    directory.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(len(name)).normal(size=(32, 32)).astype(np.float32)
    image[16, 16] = 20.0
    write_fits_image(directory / name, image, ra=math.radians(ra), dec=math.radians(dec),
                     cell_x=math.radians(1 / 3600), cell_y=math.radians(1 / 3600), freq=1.3e9, bandwidth=1e6,
                     beam=(1e-5, 1e-5, 0.0), extra={"MJD-BEG": MJD0, "MJD-END": MJD0 + 1 / 24, "XPOSURE": 3600.0,
                                                    "TELAPSE": 3600.0, "TELESCOP": "SKA-Mid", "INSTRUME": "SKA-Mid"})
    write_meta(directory / name, ProductIdentity(namespace="testing", name=name, lifetime=3600,
                                                 obs_collection="SKAO/SKAMID", obs_id=f"obs-{name}"), calib_level=3)


@pytest.fixture(scope="module")
def lake_console(tmp_path_factory):
    work = tmp_path_factory.mktemp("console-lake")
    _product(work / "staging" / "testing", "near.fits", ra=150.0, dec=2.0)
    _product(work / "staging" / "testing", "far.fits", ra=20.0, dec=-45.0)
    proc = radioflow("lake", "ingest", str(work), "--settle", "0", cwd=work)
    assert "2" in proc.stdout, proc.stdout
    c = Console(work)
    c.workdir = work  # type: ignore[attr-defined]
    yield c
    c.close()


def test_lake_search_returns_the_ingested_product(lake_console, page, shots):
    page.goto(lake_console.url)
    page.get_by_role("link", name="Datalake").click()
    page.wait_for_load_state("load")
    table = page.locator("#section-rows")
    assert "testing:near.fits" in table.inner_text() and "testing:far.fits" in table.inner_text()
    form = page.locator("form#search")
    form.locator("input[name=ra]").fill("150.2")
    form.locator("input[name=dec]").fill("2.1")
    form.locator("input[name=radius]").fill("1")
    form.get_by_role("button", name="Search").click()
    page.wait_for_load_state("load")
    page.screenshot(path=str(shots / "console-lake-search.png"), full_page=True)
    text = page.locator("#section-rows").inner_text()
    assert "testing:near.fits" in text and "testing:far.fits" not in text
    preview = page.locator("#section-rows img.preview")
    assert preview.count() == 1 and preview.evaluate("e => e.complete && e.naturalWidth > 50")


def test_sdp_page_without_blocks(lake_console, page):
    page.goto(lake_console.url + "section/sdp")
    assert "SDP" in page.locator("h1").inner_text()
    assert "No scheduling blocks" in page.locator("main").inner_text()
    assert not (lake_console.workdir / ".radioflow").exists()      # looking created no store
