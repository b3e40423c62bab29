"""Physics of the vertical slice: point sources land on the right pixel with the right flux."""
from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.wcs import WCS

from radioflow.science import observation as O
from radioflow.science import skymodel as S
from radioflow.science import telescopes as T
from radioflow.science.fits import read_fits_image, write_fits_image
from radioflow.science.image_dataset import dirty_and_psf
from radioflow.science.predict import predict_rows
from radioflow.science.simulate import simulate

NPIX = 256
CELL = math.radians(45 / 3600)
RA0, DEC0 = math.radians(15.0), math.radians(-30.0)


@pytest.fixture(scope="module")
def observation_setup():
    lay = T.load_layout("ska-low-model").select(rmax=1000)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.2e8, nchan=4,
                             ha_range=(-math.pi / 3, math.pi / 3), ntimes=16)
    return lay, obs


def test_dft_matches_direct_formula_and_sign():
    rng = np.random.default_rng(0)
    uvw = rng.normal(0, 500, (50, 3))
    freq = np.array([1e8, 1.1e8, 1.25e8])  # irregular spacing exercises the non-recurrence path
    sky = S.SkyModel.from_components([RA0 + 0.01, RA0 - 0.02], [DEC0 + 0.005, DEC0], [1.0, 2.0],
                                     ref_freq=1e8, spectral_index=[0.0, -0.7])
    vis = predict_rows(sky, uvw, freq, RA0, DEC0)
    lmn = sky.lmn(RA0, DEC0)
    uvw_l = uvw[:, None, :] * freq[None, :, None] / 299_792_458.0
    expected = sum(
        sky.flux_at(freq)[k][None, :] * np.exp(2j * np.pi * (uvw_l @ (lmn[k] - [0, 0, 1])))
        for k in range(2)
    )
    np.testing.assert_allclose(vis, expected, rtol=1e-10, atol=1e-10)
    even = predict_rows(sky, uvw, np.array([1e8, 1.1e8, 1.2e8]), RA0, DEC0)
    uvw_l = uvw[:, None, :] * np.array([1e8, 1.1e8, 1.2e8])[None, :, None] / 299_792_458.0
    expected = sum(sky.flux_at(np.array([1e8, 1.1e8, 1.2e8]))[k][None, :]
                   * np.exp(2j * np.pi * (uvw_l @ (lmn[k] - [0, 0, 1]))) for k in range(2))
    np.testing.assert_allclose(even, expected, rtol=1e-9, atol=1e-9)


def test_gaussian_component_visibility_envelope():
    fwhm = math.radians(2 / 60)
    sky = S.SkyModel.from_components([RA0], [DEC0], [1.0], major=fwhm, minor=fwhm / 2, pa=0.0)
    uvw = np.array([[0.0, 1000.0, 0.0], [1000.0, 0.0, 0.0]])
    vis = predict_rows(sky, uvw, np.array([1e8]), RA0, DEC0)[:, 0]
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    u_lambda = 1000.0 * 1e8 / 299_792_458.0
    # PA = 0: the major axis runs north, so the envelope is narrowest along v.
    assert abs(vis[0]) == pytest.approx(math.exp(-2 * math.pi**2 * sigma**2 * u_lambda**2), rel=1e-9)
    assert abs(vis[1]) == pytest.approx(math.exp(-2 * math.pi**2 * (sigma / 2) ** 2 * u_lambda**2), rel=1e-9)


def test_point_sources_land_on_predicted_pixels_with_true_flux(tmp_path, observation_setup):
    lay, obs = observation_setup
    pixels = np.array([[128, 128], [60, 150], [190, 90], [100, 40]])  # (x, y), on pixel centres
    fluxes = np.array([1.0, 2.0, 1.5, 3.0])
    ra, dec = S.pixel_to_radec(pixels[:, 0], pixels[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    images = []
    for k in range(len(fluxes)):  # one source at a time: no sidelobes of the others at its peak
        sky = S.SkyModel.from_components(ra[k:k + 1], dec[k:k + 1], fluxes[k:k + 1], ref_freq=1.1e8)
        prod = dirty_and_psf(simulate(lay, obs, sky), npix_x=NPIX, npix_y=NPIX, cell=CELL, weighting="natural")
        path = write_fits_image(tmp_path / f"d{k}.fits", prod.dirty, ra=prod.ra, dec=prod.dec, cell_x=CELL,
                                cell_y=CELL, freq=prod.freq, bandwidth=prod.bandwidth)
        image, header = read_fits_image(path)
        images.append(prod.dirty)
        (x, y) = pixels[k]
        px, py = WCS(header).celestial.world_to_pixel_values(math.degrees(ra[k]), math.degrees(dec[k]))
        assert abs(px - x) <= 0.5 and abs(py - y) <= 0.5
        assert np.unravel_index(np.argmax(image), image.shape) == (y, x), "peak not on the predicted pixel"
        assert image[y, x] == pytest.approx(fluxes[k], rel=5e-3)
    # Superposition: the image of all sources together is the sum of the single-source images.
    sky = S.SkyModel.from_components(ra, dec, fluxes, ref_freq=1.1e8)
    together = dirty_and_psf(simulate(lay, obs, sky), npix_x=NPIX, npix_y=NPIX, cell=CELL).dirty
    np.testing.assert_allclose(together, np.sum(images, axis=0), atol=1e-5 * fluxes.max())
    assert prod.psf[NPIX // 2, NPIX // 2] == pytest.approx(1.0, rel=1e-4)  # PSF gridded at 1e-4
    assert header["CDELT1"] < 0 and header["CRPIX1"] == NPIX // 2 + 1 and header["CTYPE3"] == "FREQ"


def test_weighting_changes_resolution(observation_setup):
    lay, obs = observation_setup
    sky = S.SkyModel.from_components([RA0], [DEC0], [1.0])
    ds = simulate(lay, obs, sky)
    widths = {}
    for scheme, robust in (("natural", 0.0), ("briggs", 0.0), ("uniform", 0.0)):
        prod = dirty_and_psf(ds, npix_x=NPIX, npix_y=NPIX, cell=CELL, weighting=scheme, robust=robust)
        widths[scheme] = int(np.sum(prod.psf > 0.5))
        assert prod.dirty[NPIX // 2, NPIX // 2] == pytest.approx(1.0, rel=1e-6)
    assert widths["uniform"] < widths["briggs"] < widths["natural"]
