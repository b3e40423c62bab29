"""CLEAN minor cycles, restoring beam and Cotton–Schwab major cycles on noise-free simulations."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from radioflow.errors import UsageError
from radioflow.science.beam import FWHM_PER_SIGMA, fit_restoring_beam, gaussian_image, restore
from radioflow.science.deconvolve import (
    auto_scales,
    clean,
    hogbom,
    multiscale,
    psf_support,
    scale_kernel,
    write_clean_images,
)
from radioflow.science.imaging import image_to_vis, psf_image

C = 299_792_458.0
N = 256
FREQ = np.array([1.0e8, 1.1e8, 1.2e8])
SOURCES = [(100, 120, 2.0), (50, 200, 0.5), (128, 128, 1.0), (180, 60, 0.3)]  # (x, y, Jy)


def simulate_uvw(nant: int = 40, radius: float = 2000.0, ntime: int = 16, ha_span_deg: float = 60.0,
                 dec_deg: float = -30.0, lat_deg: float = -26.7, seed: int = 1) -> np.ndarray:
    """(nrow, 3) UVW in metres, ANTENNA2 − ANTENNA1, of a random array tracking ``dec_deg``."""
    rng = np.random.default_rng(seed)
    r = radius * np.sqrt(rng.uniform(0, 1, nant))
    theta = rng.uniform(0, 2 * np.pi, nant)
    east, north, up = r * np.cos(theta), r * np.sin(theta), rng.normal(0, 5, nant)
    lat = np.radians(lat_deg)
    x = -np.sin(lat) * north + np.cos(lat) * up
    y = east
    z = np.cos(lat) * north + np.sin(lat) * up
    a1, a2 = np.triu_indices(nant, 1)
    bx, by, bz = x[a2] - x[a1], y[a2] - y[a1], z[a2] - z[a1]
    h = np.radians(np.linspace(-ha_span_deg / 2, ha_span_deg / 2, ntime))[:, None]
    d = np.radians(dec_deg)
    u = np.sin(h) * bx + np.cos(h) * by
    v = -np.sin(d) * np.cos(h) * bx + np.sin(d) * np.sin(h) * by + np.cos(d) * bz
    w = np.cos(d) * np.cos(h) * bx - np.cos(d) * np.sin(h) * by + np.sin(d) * bz
    return np.stack([u, v, w], -1).reshape(-1, 3)


def point_vis(uvw: np.ndarray, freq: np.ndarray, sources, npix: int, cell: float) -> np.ndarray:
    """Direct Fourier sum (CONVENTIONS.md sign) of point sources (x, y, flux) on pixel centres."""
    vis = np.zeros((uvw.shape[0], freq.size), complex)
    for x, y, flux in sources:
        l, m = -(x - npix // 2) * cell, (y - npix // 2) * cell
        n = np.sqrt(1 - l * l - m * m)
        phase = (uvw[:, 0:1] * l + uvw[:, 1:2] * m + uvw[:, 2:3] * (n - 1)) * (freq[None, :] / C)
        vis += flux * np.exp(2j * np.pi * phase)
    return vis


def cell_for(uvw: np.ndarray, freq: np.ndarray, oversample: float = 4.0) -> float:
    return 1.0 / (np.hypot(uvw[:, 0], uvw[:, 1]).max() * freq.max() / C) / oversample


@pytest.fixture(scope="module")
def array_psf():
    """A 2N × 2N PSF (so shifted copies cover the whole N × N image) and the cell size."""
    uvw = simulate_uvw()
    cell = cell_for(uvw, FREQ)
    wgt = np.ones((uvw.shape[0], FREQ.size))
    return psf_image(uvw, FREQ, wgt, 2 * N, 2 * N, cell, cell), cell


def convolve_exact(sky: np.ndarray, psf2: np.ndarray) -> np.ndarray:
    """Dirty image of an N × N sky with a 2N × 2N PSF centred at (N, N): exact, no wrap."""
    return signal.fftconvolve(sky, psf2, mode="full")[N:2 * N, N:2 * N]


def point_sky(sources=SOURCES) -> np.ndarray:
    sky = np.zeros((N, N))
    for x, y, flux in sources:
        sky[y, x] += flux
    return sky


# ---------------------------------------------------------------------------- minor cycles


def test_hogbom_recovers_point_fluxes(array_psf):
    psf2, _ = array_psf
    dirty = convolve_exact(point_sky(), psf2)
    model, residual, stats = hogbom(dirty, psf2, gain=0.1, niter=5000, threshold=1e-4)
    got = np.array([model[y, x] for x, y, _ in SOURCES])
    truth = np.array([f for *_, f in SOURCES])
    np.testing.assert_allclose(got, truth, rtol=1e-3)
    assert stats["peak"] <= 1e-4 < stats["start_peak"]
    assert np.abs(residual).max() <= 1e-4
    # Every component sits on a true source: the model is exactly the sky to 0.1 %.
    assert np.abs(model - point_sky()).sum() < 1e-3 * truth.sum()
    # The residual returned is the true residual.
    np.testing.assert_allclose(residual, dirty - convolve_exact(model, psf2), atol=1e-12)


def test_hogbom_same_size_psf_subtracts_clipped_patches(array_psf):
    """A PSF the size of the image: patches near the edges are clipped, not wrapped."""
    psf2, _ = array_psf
    psf = psf2[N // 2:N // 2 + N, N // 2:N // 2 + N]
    sky = point_sky([(3, 250, 1.0), (128, 128, 0.5)])
    dirty = convolve_exact(sky, psf2)
    model, residual, stats = hogbom(dirty, psf, niter=200, threshold=0.05)
    assert model[250, 3] == pytest.approx(1.0, rel=0.06)
    assert model[128, 128] == pytest.approx(0.5, rel=0.12)
    assert stats["niter"] < 200


def test_hogbom_respects_mask_niter_and_psf_cutoff(array_psf):
    psf2, _ = array_psf
    dirty = convolve_exact(point_sky(), psf2)
    mask = np.zeros((N, N), bool)
    mask[110:131, 90:111] = True  # only around the 2 Jy source at (100, 120)
    model, _, _ = hogbom(dirty, psf2, niter=2000, threshold=1e-3, mask=mask)
    assert not model[~mask].any()
    assert model[120, 100] == pytest.approx(2.0, rel=0.01)
    _, _, stats = hogbom(dirty, psf2, niter=7)
    assert stats["niter"] == 7
    fast, _, _ = hogbom(dirty, psf2, niter=5000, threshold=0.02, psf_cutoff=0.05)
    assert fast[120, 100] == pytest.approx(2.0, rel=0.03)


def test_minor_cycle_rejects_bad_parameters(array_psf):
    psf2, _ = array_psf
    with pytest.raises(UsageError, match="gain"):
        hogbom(np.zeros((N, N)), psf2, gain=1.5)
    with pytest.raises(UsageError, match="scales"):
        multiscale(np.zeros((N, N)), psf2, scales=[-1, 4])


def test_scale_kernel_unit_sum_and_support():
    assert scale_kernel(0).shape == (1, 1)
    for s in (2, 4.5, 8):
        k = scale_kernel(s)
        assert k.sum() == pytest.approx(1.0)
        assert k.shape == (2 * int(np.ceil(s)) + 1,) * 2
        assert k[k.shape[0] // 2, k.shape[1] // 2] == k.max()


def test_psf_support_and_auto_scales(array_psf):
    psf2, _ = array_psf
    level = np.abs(psf2) / psf2[N, N]
    y, x = np.indices(psf2.shape)
    ring = np.maximum(np.abs(y - N), np.abs(x - N))
    for cutoff in (0.3, 0.1, 0.05):
        h = psf_support(psf2, cutoff)
        assert level[ring > h].max() <= cutoff < level[ring >= h].max()
    assert psf_support(psf2, 0.0) == N
    assert auto_scales(4.3, 256) == [0.0, 4.0, 8.0, 16.0]
    assert auto_scales(4.3, 64) == [0.0, 4.0, 8.0]


def test_multiscale_recovers_gaussian_integrated_flux(array_psf):
    psf2, _ = array_psf
    y, x = np.indices((N, N))
    blob = np.exp(-0.5 * ((x - 140) ** 2 + (y - 110) ** 2) / 4.0**2)
    sky = 5.0 * blob / blob.sum()
    sky[60, 60] += 1.0
    dirty = convolve_exact(sky, psf2)
    model, residual, stats = multiscale(dirty, psf2, scales=[0, 4, 8], niter=5000, threshold=1e-3)
    assert model[90:131, 120:161].sum() == pytest.approx(5.0, rel=0.02)
    assert model[55:66, 55:66].sum() == pytest.approx(1.0, rel=0.01)
    assert stats["components_per_scale"][8.0] > 0  # the blob took large-scale components
    assert stats["niter"] < 5000 and np.abs(residual).max() <= 1e-3
    np.testing.assert_allclose(residual, dirty - convolve_exact(model, psf2), atol=1e-9)
    # Hogbom needs more components for the same blob (multi-scale is the point).
    _, _, hstats = hogbom(dirty, psf2, niter=20000, threshold=1e-3)
    assert stats["niter"] < hstats["niter"]


# ---------------------------------------------------------------------------- beam


@pytest.mark.parametrize("method", ["mainlobe", "wsclean"])
@pytest.mark.parametrize("bpa_deg", [0.0, 30.0, -60.0, 89.0])
def test_fit_restoring_beam_on_gaussian_psf(bpa_deg, method):
    cell = 2e-5
    beam = (6.0 * cell, 3.5 * cell, np.radians(bpa_deg))
    psf = gaussian_image((128, 128), beam, cell, cell)
    bmaj, bmin, bpa = fit_restoring_beam(psf, cell, cell, method=method)
    assert bmaj == pytest.approx(beam[0], rel=0.01)
    assert bmin == pytest.approx(beam[1], rel=0.01)
    assert np.degrees(bpa) == pytest.approx(bpa_deg, abs=0.5)


def test_beam_position_angle_is_north_through_east():
    """bpa = +45°: the major axis runs to the north-east, i.e. towards +y and −x (RA left)."""
    cell = 1e-5
    y, x = np.indices((64, 64)) - 32.0
    along, across = (-x + y) / np.sqrt(2), (x + y) / np.sqrt(2)
    smaj, smin = 5.0, 2.0
    psf = np.exp(-0.5 * (along**2 / smaj**2 + across**2 / smin**2))
    bmaj, bmin, bpa = fit_restoring_beam(psf, cell, cell)
    assert np.degrees(bpa) == pytest.approx(45.0, abs=0.2)
    assert bmaj / cell == pytest.approx(smaj * FWHM_PER_SIGMA, rel=0.01)
    assert bmin / cell == pytest.approx(smin * FWHM_PER_SIGMA, rel=0.01)


def test_fit_restoring_beam_on_array_psf(array_psf):
    psf2, cell = array_psf
    bmaj, bmin, bpa = fit_restoring_beam(psf2, cell, cell)
    # Main lobe is a few pixels wide (cell = 1/4 of the resolution).
    assert 2.5 < bmin / cell <= bmaj / cell < 8.0
    # The fitted Gaussian matches the main lobe: within 5 % of the PSF where it is above half.
    model = gaussian_image(psf2.shape, (bmaj, bmin, bpa), cell, cell)
    lobe = model > 0.5
    assert np.abs(psf2[lobe] - model[lobe]).max() < 0.05
    # WSClean's fit (sidelobes included) gives a beam within a few per cent of the main-lobe fit.
    ws = fit_restoring_beam(psf2, cell, cell, method="wsclean")
    assert ws[0] == pytest.approx(bmaj, rel=0.05) and ws[1] == pytest.approx(bmin, rel=0.05)
    with pytest.raises(UsageError, match="method"):
        fit_restoring_beam(psf2, cell, cell, method="aips")


def test_restore_point_peak_and_integral():
    cell = 1e-5
    beam = (5.0 * cell, 3.0 * cell, np.radians(20.0))
    model = np.zeros((128, 128))
    model[40, 70] = 1.5
    residual = np.full((128, 128), 0.01)
    restored = restore(model, residual, beam, cell, cell)
    assert restored[40, 70] == pytest.approx(1.51, rel=1e-9)
    beam_area_px = np.pi * beam[0] * beam[1] / (4 * np.log(2)) / cell**2
    assert (restored - residual).sum() == pytest.approx(1.5 * beam_area_px, rel=1e-3)
    assert np.unravel_index(np.argmax(restored), restored.shape) == (40, 70)


# ---------------------------------------------------------------------------- major cycles


@pytest.fixture(scope="module")
def observation():
    uvw = simulate_uvw()
    cell = cell_for(uvw, FREQ)
    vis = point_vis(uvw, FREQ, SOURCES, N, cell)
    return uvw, cell, vis, np.ones(vis.shape)


def test_clean_point_sources_recovers_fluxes(observation):
    uvw, cell, vis, wgt = observation
    res = clean(uvw, FREQ, vis, wgt, N, N, cell, cell, niter=5000, threshold=1e-3)
    truth = np.array([f for *_, f in SOURCES])
    model = np.array([res.model[y - 1:y + 2, x - 1:x + 2].sum() for x, y, _ in SOURCES])
    restored = np.array([res.restored[y, x] for x, y, _ in SOURCES])
    np.testing.assert_allclose(model, truth, rtol=0.01)
    np.testing.assert_allclose(restored, truth, rtol=0.02)
    assert res.stop_reason == "threshold" and res.stats[-1]["peak"] <= 1e-3
    assert 2 <= res.nmajor <= 10
    rms = [s["rms"] for s in res.stats]
    assert all(b < a for a, b in zip(rms, rms[1:])), rms
    assert rms[-1] < 0.01 * rms[0]
    # Each minor cycle stopped at (1 - mgain) of its starting peak (or the final threshold).
    for s in res.stats[:-1]:
        assert s["minor_threshold"] == pytest.approx(max(1e-3, 0.2 * s["peak"]))
    assert res.psf[N // 2, N // 2] == pytest.approx(1.0, abs=1e-5)
    # The restored image is model ⊛ beam + residual.
    np.testing.assert_allclose(res.restored, restore(res.model, res.residual, res.beam, cell, cell))


def test_clean_multiscale_gaussian_source():
    uvw = simulate_uvw(radius=1200.0, seed=5)
    cell = cell_for(uvw, FREQ)
    y, x = np.indices((N, N))
    blob = np.exp(-0.5 * ((x - 150) ** 2 + (y - 100) ** 2) / 5.0**2)
    sky = 4.0 * blob / blob.sum()
    sky[170, 80] += 1.0
    vis = image_to_vis(sky, uvw, FREQ, N, N, cell, cell)
    res = clean(uvw, FREQ, vis, np.ones(vis.shape), N, N, cell, cell, algorithm="multiscale",
                niter=3000, threshold=2e-3)
    assert res.model[70:131, 120:181].sum() == pytest.approx(4.0, rel=0.03)
    assert res.model[167:174, 77:84].sum() == pytest.approx(1.0, rel=0.01)
    # The minor cycle subtracts a truncated PSF, so (as in WSClean) the final residual from the
    # visibilities may sit a little above the threshold the minor cycle reached.
    assert res.stop_reason == "threshold" and res.stats[-1]["peak"] <= 1.05 * 2e-3
    used = [s for s in res.stats if "niter" in s]
    assert used and sum(s["niter"] for s in used) == res.niter


def test_clean_auto_threshold_and_niter(observation):
    uvw, cell, vis, wgt = observation
    rng = np.random.default_rng(7)
    noisy = vis + (rng.normal(0, 1.0, vis.shape) + 1j * rng.normal(0, 1.0, vis.shape))
    res = clean(uvw, FREQ, noisy, wgt, N, N, cell, cell, niter=5000, auto_threshold=3.0)
    last = res.stats[-1]
    assert res.stop_reason == "threshold"
    assert last["stop_threshold"] == pytest.approx(3.0 * last["sigma"])
    # Image noise of natural weighting: sigma_vis / sqrt(N_vis) per real part.
    expected_sigma = 1.0 / np.sqrt(vis.size)
    assert last["sigma"] == pytest.approx(expected_sigma, rel=0.25)
    assert res.model[120, 100] == pytest.approx(2.0, rel=0.05)
    capped = clean(uvw, FREQ, vis, wgt, N, N, cell, cell, niter=40, threshold=0.0)
    assert capped.niter == 40 and capped.stop_reason == "niter"


def test_clean_rejects_bad_input(observation):
    uvw, cell, vis, wgt = observation
    with pytest.raises(UsageError, match="algorithm"):
        clean(uvw, FREQ, vis, wgt, N, N, cell, cell, algorithm="clark")
    with pytest.raises(UsageError, match="mgain"):
        clean(uvw, FREQ, vis, wgt, N, N, cell, cell, mgain=0.0)
    with pytest.raises(UsageError, match="nrow"):
        clean(uvw[:10], FREQ, vis, wgt, N, N, cell, cell)
    with pytest.raises(UsageError, match="auto_threshold"):
        clean(uvw, FREQ, vis, wgt, N, N, cell, cell, auto_threshold=-3)
    with pytest.raises(UsageError, match="mask"):
        clean(uvw, FREQ, vis, wgt, N, N, cell, cell, mask=np.ones((N, N + 1), bool))


def test_clean_with_mask_and_fthreshold(observation):
    uvw, cell, vis, wgt = observation
    mask = np.zeros((N, N), bool)
    mask[110:131, 90:111] = True  # the 2 Jy source only
    res = clean(uvw, FREQ, vis, wgt, N, N, cell, cell, niter=2000, fthreshold=0.01, mask=mask)
    assert not res.model[~mask].any()
    assert res.model[119:122, 99:102].sum() == pytest.approx(2.0, rel=0.02)
    assert res.stats[0]["stop_threshold"] == pytest.approx(0.01 * res.stats[0]["peak"])
    # The unmasked 1 Jy source stays in the residual.
    assert res.residual[128, 128] == pytest.approx(1.0, rel=0.05)


def test_write_clean_images(observation, tmp_path):
    from astropy.io import fits

    uvw, cell, vis, wgt = observation
    res = clean(uvw, FREQ, vis, wgt, N, N, cell, cell, niter=200, threshold=0.01)
    paths = write_clean_images(res, str(tmp_path / "img"), ra=0.1, dec=-0.5, cell_x=cell, cell_y=cell,
                               freq=1.1e8, bandwidth=3e7)
    assert sorted(paths) == ["model", "psf", "residual", "restored"]
    with fits.open(paths["restored"]) as hdul:
        hdr, data = hdul[0].header, hdul[0].data
        assert hdr["BUNIT"] == "JY/BEAM"
        assert hdr["BMAJ"] == pytest.approx(np.degrees(res.beam[0]))
        np.testing.assert_allclose(data[0, 0], res.restored, rtol=1e-6)
    with fits.open(paths["model"]) as hdul:
        assert hdul[0].header["BUNIT"] == "JY/PIXEL"


def test_clean_rectangular_image_with_unequal_cells(observation):
    uvw, cell, _, wgt = observation
    nx, ny, cell_y = 256, 192, 1.2 * cell
    sources = [(100, 120, 2.0), (200, 30, 0.5)]
    vis = np.zeros(wgt.shape, complex)
    for x, y, flux in sources:
        l, m = -(x - nx // 2) * cell, (y - ny // 2) * cell_y
        n = np.sqrt(1 - l * l - m * m)
        vis += flux * np.exp(2j * np.pi * (uvw @ np.array([l, m, n - 1]))[:, None] * FREQ[None, :] / C)
    res = clean(uvw, FREQ, vis, wgt, nx, ny, cell, cell_y, niter=3000, threshold=1e-3)
    assert res.model.shape == (ny, nx)
    for x, y, flux in sources:
        assert res.model[y - 1:y + 2, x - 1:x + 2].sum() == pytest.approx(flux, rel=0.01)
        assert res.restored[y, x] == pytest.approx(flux, rel=0.02)


def test_clean_continues_from_a_start_model(observation):
    uvw, cell, vis, wgt = observation
    first = clean(uvw, FREQ, vis, wgt, N, N, cell, cell, niter=30, threshold=1e-3)
    assert first.stop_reason == "niter" and first.model[120, 100] < 1.99
    more = clean(uvw, FREQ, vis, wgt, N, N, cell, cell, niter=5000, threshold=1e-3, start_model=first.model)
    assert more.stats[0]["peak"] == pytest.approx(first.stats[-1]["peak"], rel=1e-6)
    for x, y, flux in SOURCES:
        assert more.model[y - 1:y + 2, x - 1:x + 2].sum() == pytest.approx(flux, rel=0.01)
    summary = more.summary()
    assert summary["niter"] == more.niter and summary["stop_reason"] == "threshold"
    assert summary["model_flux"] == pytest.approx(sum(f for *_, f in SOURCES), rel=0.01)
    assert summary["bmaj_deg"] == pytest.approx(np.degrees(more.beam[0]))
    with pytest.raises(UsageError, match="start model"):
        clean(uvw, FREQ, vis, wgt, N, N, cell, cell, start_model=np.zeros((N, 2 * N)))
