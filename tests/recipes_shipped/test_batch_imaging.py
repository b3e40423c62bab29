"""The shipped SDP batch-imaging workflow runs through the recipe runner and writes valid images."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

RECIPE = Path(__file__).resolve().parents[2] / "src" / "radioflow" / "recipes" / "batch-imaging.yml"


@pytest.mark.slow
def test_batch_imaging_small_run_writes_images_with_wcs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "radioflow", "run", str(RECIPE), "nfreqwin=2", "nmajor=1", "niter=300",
         "n_workers=2", "npix=128", "cell=180"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    img = tmp_path / "radioflow-data" / "buffers" / "img"
    vis = tmp_path / "radioflow-data" / "buffers" / "vis"
    assert sorted(p.name for p in vis.glob("window-*.ms")) == ["window-0.ms", "window-1.ms"]
    for name in ("band-restored.fits", "band-residual.fits", "band-deconvolved.fits", "window-1-restored.fits",
                 "window-1-residual.fits", "window-1-model.fits", "band-restored.png", "window-1-restored.png"):
        assert (img / name).stat().st_size > 1000, name
    with fits.open(img / "band-restored.fits") as hdul:
        header, data = hdul[0].header, hdul[0].data
    wcs = WCS(header)
    assert wcs.wcs.ctype[0] == "RA---SIN" and wcs.wcs.ctype[1] == "DEC--SIN"
    assert wcs.wcs.ctype[2] == "FREQ" and wcs.wcs.ctype[3] == "STOKES"
    ra, dec = wcs.celestial.pixel_to_world_values(64, 64)
    assert (float(ra) % 360.0) == pytest.approx(0.0, abs=1e-6) or float(ra) == pytest.approx(360.0, abs=1e-6)
    assert float(dec) == pytest.approx(-30.0, abs=1e-6)
    assert header["BMAJ"] > 0 and 0.9e8 < header["CRVAL3"] < 1.1e8
    assert np.isfinite(data).all() and data.max() > 0.3  # sources above the flux limit are there
    # The run log tells the SDP user what happened.
    out = proc.stdout + proc.stderr
    assert "simulate" in out and "ical" in out


@pytest.mark.slow
def test_batch_imaging_without_phase_errors_runs(tmp_path):
    """phase_error=0 (an error-free observation) used to fail every solve step on a missing
    window-N-true-gains.zarr; the truth is now unit gains, and the solved phases match them."""
    proc = subprocess.run(
        [sys.executable, "-m", "radioflow", "run", str(RECIPE), "nfreqwin=1", "nmajor=1", "niter=200",
         "n_workers=1", "npix=128", "cell=180", "phase_error=0", "--no-report"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "radioflow-data" / "buffers" / "vis" / "window-0-true-gains.zarr").is_dir()
    assert (tmp_path / "radioflow-data" / "buffers" / "img" / "band-restored.fits").stat().st_size > 1000
