"""ICAL physics through the cabs: phase errors ruin the image, self-calibration restores it."""
from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.wcs import WCS

from radioflow.cabs import calibration, imaging, simulate, sky
from radioflow.science.fits import read_fits_image
from radioflow.science.photometry import forced_fluxes
from radioflow.science.quality import off_source_rms
from radioflow.science.skymodel import read_catalogue

FREQ, WIDTH = 1.0e8, 2.857e6
NPIX, CELL = 256, 120.0


def _positions(catalogue: str, header) -> tuple[np.ndarray, np.ndarray]:
    model = read_catalogue(catalogue)
    x, y = WCS(header).celestial.world_to_pixel_values(np.degrees(model.ra), np.degrees(model.dec))
    flux = model.flux_at(np.array([FREQ]))[:, 0]
    return np.stack([x, y], axis=1), flux


def _dynamic_range(restored: str, catalogue: str) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    image, header = read_fits_image(restored)
    pos, flux = _positions(catalogue, header)
    inside = (pos[:, 0] > 8) & (pos[:, 0] < NPIX - 8) & (pos[:, 1] > 8) & (pos[:, 1] < NPIX - 8)
    rms = off_source_rms(image, pos[inside], 6)
    return float(image.max() / rms), image, pos, flux


@pytest.mark.slow
def test_ical_restores_dynamic_range_and_fluxes(tmp_path):
    cat = str(tmp_path / "sky.csv")
    sky.make_sky(cat, ra=0.0, dec=-30.0, radius=2.5, flux_limit=0.5, flux_max=5.0, nsources=12, ref_freq=FREQ, seed=4)
    common = dict(sky=cat, frequency=FREQ, channel_width=WIDTH, rmax=750.0, ntimes=5)
    good = simulate.simulate_window(str(tmp_path / "good.ms"), phase_error=0.0, **common)["ms"]
    bad = simulate.simulate_window(str(tmp_path / "bad.ms"), phase_error=1.0,
                                   true_gains=str(tmp_path / "true.zarr"), **common)["ms"]
    opts = dict(npix=NPIX, cell=CELL, niter=1500, auto_threshold=3.0)
    ref = imaging.clean_ms(good, prefix=str(tmp_path / "ref"), **opts)
    raw = imaging.clean_ms(bad, prefix=str(tmp_path / "raw"), **opts)
    dr_ref, *_ = _dynamic_range(ref["restored"], cat)
    dr_raw, *_ = _dynamic_range(raw["restored"], cat)
    assert dr_raw < 0.2 * dr_ref, (dr_raw, dr_ref)

    model = raw["model"]
    errors = []
    for cycle in range(2):
        calibration.predict_model(bad, model)
        sol = calibration.gaincal(bad, solutions=str(tmp_path / f"g{cycle}.zarr"), true_gains=str(tmp_path / "true.zarr"))
        errors.append(sol["phase_error"])
        model = imaging.clean_ms(bad, prefix=str(tmp_path / f"c{cycle}"), column="CORRECTED_DATA", **opts)["model"]
    final = imaging.clean_ms(bad, prefix=str(tmp_path / "final"), column="CORRECTED_DATA", **opts)
    dr_cal, image, pos, flux = _dynamic_range(final["restored"], cat)
    assert errors[-1] < 0.05 and errors[-1] <= errors[0] + 1e-3, errors
    assert dr_cal >= 0.9 * dr_ref, (dr_cal, dr_ref)
    # Restored fluxes of the bright sources (forced photometry with the restoring beam) within 2 %.
    header = read_fits_image(final["restored"])[1]
    beam = tuple(np.radians([header["BMAJ"], header["BMIN"], header["BPA"]]))
    cell = math.radians(CELL / 3600)
    bright = np.flatnonzero(flux > 1.0)
    assert bright.size >= 2
    measured = forced_fluxes(image, pos[bright], beam, cell, cell)
    np.testing.assert_allclose(measured, flux[bright], rtol=0.02)
