"""The vertical slice through the command line: products, and one-paragraph errors for bad input."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

RADIOFLOW = [sys.executable, "-m", "radioflow"]


def run(args, cwd, **env):
    return subprocess.run(RADIOFLOW + list(args), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **env}, timeout=300)


def test_simulate_image_and_info_end_to_end(tmp_path):
    sky = tmp_path / "sky.csv"
    sky.write_text("name,ra_deg,dec_deg,flux_jy\nc,0.0,-30.0,2.5\n")
    r = run(["simulate", "-o", "obs.ms", "--rmax", "600", "--nchan", "4", "--ntimes", "3", "--sky", str(sky)], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(["vis", "info", "obs.ms"], tmp_path)
    assert r.returncode == 0 and "channels" in r.stdout and "4: 90.000–110.000 MHz" in r.stdout
    r = run(["image", "obs.ms", "--size", "128", "--scale", "3amin", "--weight", "briggs", "0.5", "--name", "img"], tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("img-dirty.fits", "img-psf.fits", "img-dirty.png", "img-psf.png"):
        assert (tmp_path / name).stat().st_size > 1000
    with fits.open(tmp_path / "img-dirty.fits") as hdul:
        data, header = hdul[0].data[0, 0], hdul[0].header
    assert np.unravel_index(np.argmax(data), data.shape) == (64, 64)
    assert data[64, 64] == pytest.approx(2.5, rel=1e-4)
    wcs = WCS(header)
    assert wcs.naxis == 4 and header["CTYPE4"] == "STOKES" and header["CRVAL2"] == pytest.approx(-30.0)
    r = run(["image", "obs.ms", "-size", "128", "128", "-scale", "3amin", "-name", "ws", "-j", "1", "-no-psf"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ws-dirty.fits").exists() and not (tmp_path / "ws-psf.fits").exists()
    assert fits.getdata(tmp_path / "ws-dirty.fits")[0, 0, 64, 64] == pytest.approx(2.5, rel=1e-4)


@pytest.mark.parametrize("args,needle", [
    (["simulate", "-o", "x.ms", "--telescope", "/nonexistent/layout.tm"], "does not exist"),
    (["simulate", "-o", "x.ms", "--telescope", "ska-nonesuch"], "Unknown telescope layout 'ska-nonesuch'"),
    (["simulate", "-o", "x.ms", "--nchan", "-3"], "channels must be at least 1"),
    (["simulate", "-o", "not-a-dir/x.ms", "--rmax", "300", "--nchan", "1", "--ntimes", "1"], "x.ms"),
    (["image", "missing.ms", "--size", "64", "--scale", "1amin"], "missing.ms"),
    (["image", "whatever.ms", "--size", "63", "--scale", "1amin"], "--size must be even"),
    (["image", "whatever.ms", "--size", "64", "--scale", "1furlong"], "Cannot read pixel scale"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-auto-threshold", "-3"], "-auto-threshold must be >= 0"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-channels-out", "0"], "-channels-out must be at least 1"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-channels-out", "2", "-fit-spectral-pol", "2"],
     "needs -join-channels"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-update-model-required"], "needs -niter N > 0"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-niter", "10", "-update-model-required",
      "-no-update-model-required", "-niter", "0", "-update-model-required"], "needs -niter N > 0"),
    (["image", "whatever.zarr", "-size", "64", "-scale", "1amin", "-niter", "10", "-update-model-required"],
     "into a local Measurement Set"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-threshhold", "4"], "Unknown option -threshhold"),
    (["image", "whatever.ms", "-size", "64", "-scale", "1amin", "-pol", "Q"], "Stokes I only"),
    (["image", "whatever.ms", "-size", "60000", "-scale", "1asec"], "needs about"),
    (["image", "whatever.ms", "-size", "100", "-scale", "1e308asec"], "more than the 180°"),
    (["image", "whatever.ms", "-size", "100000", "-scale", "1asec"], "larger than 65536"),
    (["simulate", "-o", "x.ms", "--ntimes", "100000000"], "needs about"),
    (["simulate", "-o", "existing.ms"], "already exists"),
])
def test_bad_input_gives_one_paragraph_and_exit_2(tmp_path, args, needle):
    (tmp_path / "not-a-dir").write_text("a file, so nothing can be written beneath it")
    (tmp_path / "existing.ms").mkdir()
    (tmp_path / "existing.ms" / "table.dat").write_text("an earlier dataset that must survive")
    r = run(args, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert needle in r.stderr.replace("\n", " ")
    assert r.stderr.strip().count("\n\n") == 0  # one paragraph
    assert (tmp_path / "existing.ms" / "table.dat").read_text() == "an earlier dataset that must survive"


def test_rectangular_image_and_clean_options_from_the_command_line(tmp_path):
    """WSClean's -size W H is width then height; -threshold/-auto-threshold are options, not help."""
    sky = tmp_path / "sky.csv"
    sky.write_text("name,ra_deg,dec_deg,flux_jy\nc,0.0,-30.0,2.5\n")
    r = run(["simulate", "-o", "obs.ms", "--rmax", "600", "--nchan", "2", "--ntimes", "3", "--sky", str(sky)], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(["image", "obs.ms", "-size", "160", "96", "-scale", "3amin", "-niter", "200", "-gain", "0.1",
             "-mgain", "0.8", "-threshold", "0.01", "-auto-threshold", "3", "-name", "rect", "-no-png"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Usage" not in r.stdout
    for kind in ("dirty", "psf", "model", "residual", "image"):
        data = fits.getdata(tmp_path / f"rect-{kind}.fits")[0, 0]
        assert data.shape == (96, 160), kind  # [y, x]
    model = fits.getdata(tmp_path / "rect-model.fits")[0, 0]
    assert np.unravel_index(np.argmax(model), model.shape) == (48, 80)
    assert model.sum() == pytest.approx(2.5, rel=0.05)


def test_streamed_and_dask_images_equal_the_in_memory_image(tmp_path):
    """A Zarr dataset, an MS over the -abs-mem budget and -b dask all stream chunk by chunk and
    give the in-memory image of the same visibilities."""
    sky = tmp_path / "sky.csv"
    sky.write_text("name,ra_deg,dec_deg,flux_jy\na,0.0,-30.0,2.5\nb,1.0,-29.0,1.0\n")
    r = run(["simulate", "-o", "obs.ms", "--rmax", "600", "--nchan", "4", "--ntimes", "6", "--sky", str(sky)], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(["vis", "convert", "obs.ms", "obs.zarr"], tmp_path)
    assert r.returncode == 0, r.stderr
    common = ["-size", "128", "128", "-scale", "3amin", "-weight", "uniform", "-no-png"]
    assert run(["image", "obs.ms", *common, "-name", "mem"], tmp_path).returncode == 0
    ref = fits.getdata(tmp_path / "mem-dirty.fits")[0, 0]
    for name, extra, env in (("zarr", ["obs.zarr"], {}), ("budget", ["obs.ms", "-abs-mem", "0.00002"], {}),
                             ("dask", ["obs.ms", "-b", "dask"], {"RADIOFLOW_BACKEND__DASK__N_WORKERS": "1",
                                                                 "RADIOFLOW_BACKEND__DASK__SHOW_DASHBOARD": "false"})):
        r = run(["image", *extra, *common, "-name", name], tmp_path, **env)
        assert r.returncode == 0, (name, r.stderr)
        img = fits.getdata(tmp_path / f"{name}-dirty.fits")[0, 0]
        assert np.abs(img - ref).max() <= 1e-5 * np.abs(ref).max(), name
        assert fits.getheader(tmp_path / f"{name}-dirty.fits")["CRVAL2"] == pytest.approx(-30.0)
    assert "chunks" in " ".join(fits.getheader(tmp_path / "budget-dirty.fits")["HISTORY"])


def test_image_of_an_ms_imports_no_dask_xarray_pandas_numba_or_astropy(tmp_path):
    """Small jobs start fast: ``radioflow image`` on a local MS reads it with python-casacore into
    numpy and writes FITS itself (these imports cost ~1.4 s of a 0.5 M-visibility job)."""
    import subprocess
    import sys

    sky = tmp_path / "sky.csv"
    sky.write_text("name,ra_deg,dec_deg,flux_jy\na,0.0,-30.0,2.5\n")
    r = run(["simulate", "-o", "obs.ms", "--rmax", "400", "--nchan", "2", "--ntimes", "2", "--sky", str(sky)], tmp_path)
    assert r.returncode == 0, r.stderr
    code = ("import sys\nfrom radioflow.cli import main\n"
            "rc = main(['image', 'obs.ms', '-size', '64', '64', '-scale', '3amin', '-no-png', '-name', 'small'])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'xarray', 'pandas', 'numba', 'astropy'})\n"
            "print('HEAVY', ','.join(heavy), 'RC', rc)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "HEAVY  RC 0" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "small-dirty.fits").exists() and (tmp_path / "small-psf.fits").exists()
