"""``radioflow image -channels-out N -join-channels [-fit-spectral-pol T]`` against WSClean 3.1 on one MS."""
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
from radioflow.science.fits import read_fits_image
from radioflow.science.simulate import simulate
from radioflow.vis.ms import write_ms

NPIX = 256
CELL_ASEC = 120.0
CELL = math.radians(CELL_ASEC / 3600)
RA0, DEC0 = math.radians(60.0), math.radians(-30.0)
PIXELS = np.array([[128, 128], [70, 150], [200, 60]])  # (x, y)
FLUXES = np.array([2.0, 1.0, 1.5])
ALPHA = np.array([-0.7, 0.0, 1.5])
REF = 1.15e8

pytestmark = [
    pytest.mark.wsclean,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wsclean") is None, reason="wsclean not installed"),
]


@pytest.fixture(scope="module")
def ms(tmp_path_factory):
    """Six 6 MHz channels (100–130 MHz), three sources with spectral indices −0.7, 0 and +1.5."""
    lay = T.load_layout("ska-low-model").select(rmax=400)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.3e8, nchan=6,
                             ha_range=(-math.pi / 12, math.pi / 12), ntimes=8)
    ra, dec = S.pixel_to_radec(PIXELS[:, 0], PIXELS[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, FLUXES, ref_freq=REF, spectral_index=ALPHA)
    tmp = tmp_path_factory.mktemp("chan")
    return write_ms(simulate(lay, obs, sky, noise_sigma=0.2, seed=3), tmp / "spec.ms")


COMMON = ["-size", str(NPIX), str(NPIX), "-scale", f"{CELL_ASEC}asec", "-weight", "uniform", "-niter", "2000",
          "-mgain", "0.8", "-auto-threshold", "3", "-join-channels"]


def _both(ms, tmp_path, extra: list[str]):
    ws, rf = tmp_path / "ws", tmp_path / "rf"
    subprocess.run(["wsclean", "-quiet", "-j", "2", "-use-wgridder", *COMMON, *extra, "-name", str(ws), str(ms)],
                   check=True, capture_output=True, cwd=tmp_path)
    r = subprocess.run([sys.executable, "-m", "radioflow", "image", str(ms), *COMMON, *extra, "-name", str(rf),
                        "-no-png"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return ws, rf


def _box(model: np.ndarray, half: int = 2) -> np.ndarray:
    return np.array([model[y - half:y + half + 1, x - half:x + half + 1].sum() for x, y in PIXELS])


def test_channels_out_join_channels_match_wsclean(ms, tmp_path):
    ws, rf = _both(ms, tmp_path, ["-channels-out", "4"])
    centres = []
    for name in ("0000", "0001", "0002", "0003", "MFS"):
        for kind in ("dirty", "psf", "model", "residual", "image"):
            assert (tmp_path / f"rf-{name}-{kind}.fits").exists(), (name, kind)
        ws_model, ws_head = read_fits_image(f"{ws}-{name}-model.fits")
        rf_model, rf_head = read_fits_image(f"{rf}-{name}-model.fits")
        # the FREQ axis: WSClean's uneven split of 6 channels into 1, 2, 1, 2 and the whole band for MFS
        assert rf_head["CRVAL3"] == pytest.approx(ws_head["CRVAL3"], abs=1.0)
        assert rf_head["CDELT3"] == pytest.approx(ws_head["CDELT3"], abs=1.0)
        ws_psf_head = read_fits_image(f"{ws}-{name}-psf.fits")[1]
        assert rf_head["WSCIMGWG"] == pytest.approx(ws_psf_head["WSCIMGWG"], rel=1e-6)  # MF weighting
        ws_flux, rf_flux = _box(ws_model), _box(rf_model)
        np.testing.assert_allclose(rf_flux, ws_flux, rtol=0.01)
        ws_img, ws_img_head = read_fits_image(f"{ws}-{name}-image.fits")
        rf_img, rf_img_head = read_fits_image(f"{rf}-{name}-image.fits")
        peaks = [(ws_img[y, x], rf_img[y, x]) for x, y in PIXELS]
        np.testing.assert_allclose([p[1] for p in peaks], [p[0] for p in peaks], rtol=0.01)
        assert rf_img_head["BMAJ"] == pytest.approx(ws_img_head["BMAJ"], rel=1e-3)
        if name != "MFS":
            centres.append(rf_head["CRVAL3"])
            # the per-channel fluxes follow each source's spectrum
            np.testing.assert_allclose(rf_flux, FLUXES * (rf_head["CRVAL3"] / REF) ** ALPHA, rtol=0.03)
    assert centres == pytest.approx([1.0e8, 1.09e8, 1.18e8, 1.27e8])


def test_fit_spectral_pol_matches_wsclean(ms, tmp_path):
    ws, rf = _both(ms, tmp_path, ["-channels-out", "6", "-fit-spectral-pol", "2"])
    spectra = []
    for g in range(6):
        ws_model = read_fits_image(f"{ws}-{g:04d}-model.fits")[0]
        rf_model = read_fits_image(f"{rf}-{g:04d}-model.fits")[0]
        np.testing.assert_allclose(_box(rf_model), _box(ws_model), rtol=0.01)
        spectra.append(_box(rf_model))
    # two terms: every source's fluxes lie on a straight line in frequency
    assert np.abs(np.diff(np.array(spectra), 2, axis=0)).max() < 1e-3
