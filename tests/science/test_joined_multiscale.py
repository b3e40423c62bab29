"""Joined-channel multi-scale CLEAN (``-multiscale -channels-out N -join-channels``) on noise-free simulations."""
from __future__ import annotations

import numpy as np
import pytest
from test_deconvolve import cell_for, simulate_uvw

from radioflow.commands.wsclean_args import parse_image_args
from radioflow.science.deconvolve import multiscale
from radioflow.science.imaging import image_to_vis, psf_image, vis_to_image
from radioflow.science.joined_clean import joined_multiscale
from radioflow.science.major_cycle import ArrayImager, CubeClean, cotton_schwab, spectral_projection

N = 128
FREQ = np.array([1.0e8, 1.1e8, 1.2e8, 1.3e8])
REF = 1.15e8
EXT_FLUX, EXT_ALPHA, EXT_SIGMA = 4.0, -0.7, 6.0  # a Gaussian at (75, 50), sigma in pixels
POINT_FLUX, POINT_ALPHA = 1.0, 1.0  # at (40, 85)
EXT_BOX = (slice(30, 71), slice(55, 96))
POINT_BOX = (slice(82, 89), slice(37, 44))


@pytest.fixture(scope="module")
def field():
    """Four one-channel groups of a Gaussian (spectral index −0.7) and a point source (+1)."""
    uvw = simulate_uvw(radius=1200.0, seed=5)
    cell = cell_for(uvw, FREQ)
    y, x = np.indices((N, N))
    blob = np.exp(-0.5 * ((x - 75) ** 2 + (y - 50) ** 2) / EXT_SIGMA**2)
    blob /= blob.sum()
    vis = []
    for f in FREQ:
        sky = EXT_FLUX * (f / REF) ** EXT_ALPHA * blob
        sky[85, 40] += POINT_FLUX * (f / REF) ** POINT_ALPHA
        vis.append(image_to_vis(sky, uvw, np.array([f]), N, N, cell, cell))
    return uvw, cell, np.concatenate(vis, axis=1)


def _clean(field, **kw) -> CubeClean:
    uvw, cell, vis = field
    imager = ArrayImager(uvw, FREQ, vis, np.ones(vis.shape), N, N, cell, cell, groups=[(g, g + 1) for g in range(4)])
    return cotton_schwab(imager, cell, cell, niter=20000, threshold=1e-3, freqs=FREQ, **kw)


def test_joined_multiscale_recovers_each_groups_flux_with_fewer_components(field):
    ms = _clean(field, algorithm="multiscale")
    hog = _clean(field, algorithm="hogbom")
    assert ms.stop_reason == "threshold" and ms.stats[-1]["peak"] <= 1.05e-3
    np.testing.assert_allclose(ms.model[(slice(None), *EXT_BOX)].sum(axis=(1, 2)),
                               EXT_FLUX * (FREQ / REF) ** EXT_ALPHA, rtol=0.02)
    np.testing.assert_allclose(ms.model[(slice(None), *POINT_BOX)].sum(axis=(1, 2)),
                               POINT_FLUX * (FREQ / REF) ** POINT_ALPHA, rtol=0.01)
    assert ms.niter < 0.5 * hog.niter, (ms.niter, hog.niter)
    # the extended source is modelled by smooth components, not a bed of delta functions
    ext = ms.model[(0, *EXT_BOX)]
    assert np.count_nonzero(ext) > 0.5 * ext.size


def test_joined_multiscale_with_fit_spectral_pol(field):
    ms = _clean(field, algorithm="multiscale", spectral_terms=2)
    assert ms.stop_reason == "threshold"
    point = ms.model[:, 85, 40]
    assert np.all(point > 0)
    # two terms: each component's fluxes lie on a straight line in frequency
    assert np.abs(np.diff(ms.model, 2, axis=0)).max() < 1e-9 * np.abs(ms.model).max()
    np.testing.assert_allclose(ms.model[(slice(None), *EXT_BOX)].sum(axis=(1, 2)),
                               EXT_FLUX * (FREQ / REF) ** EXT_ALPHA, rtol=0.03)


def test_one_group_joined_multiscale_is_multiscale(field):
    uvw, cell, vis = field
    wgt = np.ones((uvw.shape[0], 1))
    psf = psf_image(uvw, FREQ[:1], wgt, N, N, cell, cell)
    dirty = vis_to_image(uvw, FREQ[:1], vis[:, :1], wgt, N, N, cell, cell)
    opts = dict(scales=[0, 4, 8], gain=0.1, niter=300, threshold=0.0, psf_cutoff=0.1)
    single, _, stats = multiscale(dirty, psf, **opts)
    joined, jstats = joined_multiscale(dirty[None], psf[None], np.ones(1), np.eye(1), **opts)
    np.testing.assert_allclose(joined[0], single, rtol=1e-9, atol=1e-12)
    assert jstats["components_per_scale"] == stats["components_per_scale"]


def test_joined_multiscale_projection_and_weights():
    """A one-term spectral fit gives every group the same component fluxes."""
    rng = np.random.default_rng(1)
    psf = np.zeros((64, 64))
    psf[32, 32] = 1.0
    psf = psf + 0.05 * np.exp(-0.5 * ((np.indices(psf.shape) - 32) ** 2).sum(0) / 2.0**2)
    psf /= psf[32, 32]
    res = np.stack([rng.normal(0, 0.01, (64, 64)) for _ in range(3)])
    res[:, 30, 20] += np.array([1.0, 2.0, 3.0])
    w = np.array([0.2, 0.3, 0.5])
    flat = spectral_projection(np.array([1.0, 2.0, 3.0]), w, 1)
    model, stats = joined_multiscale(res, np.stack([psf] * 3), w, flat, scales=[0, 4], niter=50)
    assert stats["niter"] > 0
    np.testing.assert_allclose(model[0], model[1])
    np.testing.assert_allclose(model[1], model[2])


def test_image_accepts_multiscale_with_joined_channels():
    args = parse_image_args(["x.ms", "-size", "64", "64", "-scale", "60asec", "-niter", "10", "-multiscale",
                             "-channels-out", "4", "-join-channels"])
    assert args.multiscale and args.join_channels and args.channels_out == 4
