"""Joined-channel Hogbom CLEAN (WSClean's ``-join-channels``): one peak search, per-group fluxes.

Peaks are found on the integrated residual ``Σ w_g R_g`` (``w_g`` normalised imaging-weight
sums); the component at a peak takes ``gain × R_g(peak)`` in every group ``g`` (after an
optional spectral fit, a projection matrix from
:func:`radioflow.science.major_cycle.spectral_projection`), and each group's residual loses
that flux times its own PSF. The integrated image is updated with the same patches, so one
iteration costs ``G`` PSF-patch subtractions.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .deconvolve import _check_images, _check_params, _psf_patch, _row_absmax, _subtract_patch, _window


@njit(cache=True)
def _joined_loop(res, integ, patches, wn, proj, allowed, model, gain, niter, threshold):  # pragma: no cover - compiled
    ngroup, ny, _ = res.shape
    rowmax = np.empty(ny)
    rowarg = np.zeros(ny, dtype=np.int64)
    _row_absmax(integ, allowed, 0, ny, rowmax, rowarg)
    values = np.empty(ngroup)
    n = 0
    while n < niter:
        y = np.argmax(rowmax)
        if rowmax[y] < 0 or rowmax[y] <= threshold:
            break
        x = rowarg[y]
        for g in range(ngroup):
            values[g] = res[g, y, x]
        amps = gain * (proj @ values)
        r0, r1 = y, y + 1
        for g in range(ngroup):
            model[g, y, x] += amps[g]
            a0, a1 = _subtract_patch(res[g], patches[g], y, x, amps[g])
            _subtract_patch(integ, patches[g], y, x, wn[g] * amps[g])
            r0, r1 = min(r0, a0), max(r1, a1)
        _row_absmax(integ, allowed, r0, r1, rowmax, rowarg)
        n += 1
    return n, max(rowmax.max(), 0.0)


def joined_hogbom(
    residuals: np.ndarray,
    psfs: np.ndarray,
    weights: np.ndarray,
    projection: np.ndarray,
    *,
    gain: float = 0.1,
    niter: int = 1000,
    threshold: float = 0.0,
    mask: np.ndarray | None = None,
    psf_cutoff: float = 0.0,
) -> tuple[np.ndarray, dict]:
    """Hogbom CLEAN of residuals ``(G, y, x)`` with PSFs ``(G, y, x)`` (peak 1), peaks on the integrated image.

    ``weights`` (G,) sum to 1; stops after ``niter`` components or when the integrated peak is at
    most ``threshold``. Returns ``(model (G, y, x) Jy/pixel, stats)``; ``residuals`` are not changed.
    """
    _check_params(gain, niter, threshold)
    res = np.ascontiguousarray(residuals, dtype=np.float64).copy()
    ngroup, ny, nx = res.shape
    allowed = _check_images(res[0], psfs[0], mask)[2]
    half = max(_window(np.asarray(p, np.float64), psf_cutoff) for p in psfs)
    patches = np.stack([_psf_patch(np.asarray(p, np.float64), half, ny, nx) for p in psfs])
    wn = np.ascontiguousarray(weights, dtype=np.float64)
    integ = np.ascontiguousarray(np.tensordot(wn, res, axes=1))
    start = float(np.max(np.abs(integ[allowed]))) if allowed.any() else 0.0
    model = np.zeros_like(res)
    n, peak = _joined_loop(res, integ, patches, wn, np.ascontiguousarray(projection, dtype=np.float64), allowed,
                           model, float(gain), int(niter), float(threshold))
    return model, {"niter": int(n), "peak": float(peak), "start_peak": start}
