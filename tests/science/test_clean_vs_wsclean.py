"""radioflow CLEAN against WSClean (-use-wgridder -mgain 0.8 -auto-threshold 3) on one MS."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from radioflow.science import observation as O
from radioflow.science import skymodel as S
from radioflow.science import telescopes as T
from radioflow.science.deconvolve import clean
from radioflow.science.fits import read_fits_image
from radioflow.science.imaging import stokes_i, uvw_rows
from radioflow.science.simulate import simulate
from radioflow.vis.ms import read_ms, write_ms

NPIX = 256
CELL_ASEC = 120.0
CELL = math.radians(CELL_ASEC / 3600)
RA0, DEC0 = math.radians(60.0), math.radians(-30.0)
PIXELS = np.array([[128, 128], [70, 150], [200, 60], [160, 210], [90, 90]])  # (x, y), on pixel centres
FLUXES = np.array([2.0, 1.0, 0.5, 1.5, 0.2])
NITER = 10000
GAUSS_PIXELS = np.array([[128, 128], [70, 150]])  # a 3 Jy Gaussian and a 1 Jy point source
GAUSS_FLUXES = np.array([3.0, 1.0])

pytestmark = [
    pytest.mark.wsclean,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wsclean") is None, reason="wsclean not installed"),
]


@pytest.fixture(scope="module")
def wsclean_run(tmp_path_factory):
    """One noisy simulated MS and WSClean's CLEAN products of it: (ms, {kind: (image, header)})."""
    lay = T.load_layout("ska-low-model").select(rmax=400)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=2,
                             ha_range=(-math.pi / 12, math.pi / 12), ntimes=8)
    ra, dec = S.pixel_to_radec(PIXELS[:, 0], PIXELS[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, FLUXES, ref_freq=1.05e8, spectral_index=0.0)
    ds = simulate(lay, obs, sky, noise_sigma=0.5, seed=11)
    tmp = tmp_path_factory.mktemp("clean")
    ms = write_ms(ds, tmp / "sim.ms")
    name = tmp / "ws"
    subprocess.run(["wsclean", "-quiet", "-j", "2", "-use-wgridder", "-wgridder-accuracy", "1e-5",
                    "-no-small-inversion", "-size", str(NPIX), str(NPIX), "-scale", f"{CELL_ASEC}asec",
                    "-weight", "natural", "-niter", str(NITER), "-mgain", "0.8", "-auto-threshold", "3",
                    "-name", str(name), str(ms)], check=True, capture_output=True, cwd=tmp)
    return ms, {kind: read_fits_image(f"{name}-{kind}.fits") for kind in ("model", "image", "residual")}


@pytest.fixture(scope="module")
def cleaned(wsclean_run):
    """The same MS cleaned by radioflow with WSClean's settings."""
    ms, ws = wsclean_run
    back = read_ms(ms)
    vis, wgt, flag = stokes_i(back)
    ours = clean(uvw_rows(back), back["frequency"].values, vis, np.where(flag, 0.0, wgt), NPIX, NPIX,
                 CELL, CELL, niter=NITER, mgain=0.8, auto_threshold=3.0, beam_fit="wsclean")
    return ws, ours


def _box_sums(model: np.ndarray, pixels: np.ndarray = PIXELS, half: int = 2) -> np.ndarray:
    return np.array([model[y - half:y + half + 1, x - half:x + half + 1].sum() for x, y in pixels])


def test_model_fluxes_agree_with_wsclean(cleaned):
    ws, ours = cleaned
    ws_flux, our_flux = _box_sums(ws["model"][0]), _box_sums(ours.model)
    assert np.all(np.abs(our_flux - ws_flux) <= 0.01 * ws_flux), (our_flux, ws_flux)
    assert np.all(np.abs(our_flux - FLUXES) <= 0.02 * FLUXES + 3 * ours.stats[-1]["sigma"])


def test_restored_peaks_agree_with_wsclean(cleaned):
    ws, ours = cleaned
    ws_peak = np.array([ws["image"][0][y, x] for x, y in PIXELS])
    our_peak = np.array([ours.restored[y, x] for x, y in PIXELS])
    assert np.all(np.abs(our_peak - ws_peak) <= 0.01 * ws_peak), (our_peak, ws_peak)


def test_stopping_and_beam_agree_with_wsclean(cleaned):
    ws, ours = cleaned
    header = ws["model"][1]
    assert ours.stop_reason == "threshold"
    # Both stop at 3 sigma of the same residual: the iteration counts and residual noise agree.
    assert abs(ours.niter - header["WSCMINOR"]) <= 0.1 * header["WSCMINOR"]
    ws_rms, our_rms = np.std(ws["residual"][0]), np.std(ours.residual)
    assert our_rms == pytest.approx(ws_rms, rel=0.02)
    # beam_fit="wsclean" reproduces WSClean's fitted restoring beam.
    img_header = ws["image"][1]
    assert math.degrees(ours.beam[0]) == pytest.approx(img_header["BMAJ"], rel=1e-4)
    assert math.degrees(ours.beam[1]) == pytest.approx(img_header["BMIN"], rel=1e-4)
    pa_diff = (math.degrees(ours.beam[2]) - img_header["BPA"]) % 180.0
    assert min(pa_diff, 180.0 - pa_diff) < 0.05


def test_radioflow_image_with_wsclean_options_matches_wsclean(wsclean_run, tmp_path):
    """``radioflow image`` takes WSClean's CLEAN options and writes WSClean's products."""
    ms, ws = wsclean_run
    cmd = [sys.executable, "-m", "radioflow", "image", str(ms), "-size", str(NPIX), str(NPIX),
           "-scale", f"{CELL_ASEC}asec", "-weight", "natural", "-niter", str(NITER), "-mgain", "0.8",
           "-auto-threshold", "3", "-name", str(tmp_path / "rf"), "-no-png"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for kind in ("dirty", "psf", "model", "residual", "image"):
        assert (tmp_path / f"rf-{kind}.fits").exists(), kind
    model = read_fits_image(tmp_path / "rf-model.fits")[0]
    ws_flux, our_flux = _box_sums(ws["model"][0]), _box_sums(model)
    assert np.all(np.abs(our_flux - ws_flux) <= 0.01 * ws_flux), (our_flux, ws_flux)
    image, header = read_fits_image(tmp_path / "rf-image.fits")
    assert header["BMAJ"] == pytest.approx(ws["image"][1]["BMAJ"], rel=1e-3)
    ws_peak = np.array([ws["image"][0][y, x] for x, y in PIXELS])
    assert np.all(np.abs(np.array([image[y, x] for x, y in PIXELS]) - ws_peak) <= 0.01 * ws_peak)


def test_auto_mask_cleans_deeper_inside_the_mask(wsclean_run, tmp_path):
    """-auto-mask 5 -auto-threshold 1: the second stage cleans only where the first found
    components and goes below the first stage's 5 sigma."""
    ms, _ = wsclean_run
    base = [sys.executable, "-m", "radioflow", "image", str(ms), "-size", str(NPIX), str(NPIX),
            "-scale", f"{CELL_ASEC}asec", "-niter", str(NITER), "-mgain", "0.8", "-no-png"]
    r = subprocess.run(base + ["-auto-threshold", "5", "-name", str(tmp_path / "a")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(base + ["-auto-mask", "5", "-auto-threshold", "1", "-name", str(tmp_path / "b")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    first = read_fits_image(tmp_path / "a-model.fits")[0]
    masked = read_fits_image(tmp_path / "b-model.fits")[0]
    assert np.all(masked[first == 0] == 0)  # nothing outside the mask
    assert masked.sum() > first.sum()  # cleaned deeper inside it
    assert np.abs(_box_sums(masked) - FLUXES).max() < np.abs(_box_sums(first) - FLUXES).max() + 1e-6


@pytest.fixture(scope="module")
def cleaned_multiscale(tmp_path_factory):
    """A resolved Gaussian (3 Jy, 0.6° × 0.4°) and a point source, multi-scale cleaned by both."""
    lay = T.load_layout("ska-low-model").select(rmax=400)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=2,
                             ha_range=(-math.pi / 12, math.pi / 12), ntimes=8)
    ra, dec = S.pixel_to_radec(GAUSS_PIXELS[:, 0], GAUSS_PIXELS[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, GAUSS_FLUXES, ref_freq=1.05e8, spectral_index=0.0,
                                     major=[math.radians(0.6), 0.0], minor=[math.radians(0.4), 0.0],
                                     pa=[math.radians(30.0), 0.0])
    ds = simulate(lay, obs, sky, noise_sigma=0.2, seed=12)
    tmp = tmp_path_factory.mktemp("msclean")
    ms = write_ms(ds, tmp / "gauss.ms")
    name = tmp / "ws"
    subprocess.run(["wsclean", "-quiet", "-j", "2", "-use-wgridder", "-wgridder-accuracy", "1e-5",
                    "-no-small-inversion", "-size", str(NPIX), str(NPIX), "-scale", f"{CELL_ASEC}asec",
                    "-weight", "natural", "-niter", str(NITER), "-mgain", "0.8", "-auto-threshold", "3",
                    "-multiscale", "-name", str(name), str(ms)], check=True, capture_output=True, cwd=tmp)
    back = read_ms(ms)
    vis, wgt, flag = stokes_i(back)
    ours = clean(uvw_rows(back), back["frequency"].values, vis, np.where(flag, 0.0, wgt), NPIX, NPIX,
                 CELL, CELL, algorithm="multiscale", niter=NITER, mgain=0.8, auto_threshold=3.0)
    return read_fits_image(f"{name}-model.fits")[0], ours


def test_multiscale_integrated_fluxes_agree_with_wsclean(cleaned_multiscale):
    ws_model, ours = cleaned_multiscale
    ws_flux = _box_sums(ws_model, GAUSS_PIXELS, 20)
    our_flux = _box_sums(ours.model, GAUSS_PIXELS, 20)
    assert np.all(np.abs(our_flux - ws_flux) <= 0.01 * ws_flux), (our_flux, ws_flux)
    np.testing.assert_allclose(our_flux, GAUSS_FLUXES, rtol=0.02)
    assert ours.stop_reason == "threshold"
