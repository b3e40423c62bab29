"""Joined-channel Hogbom and multi-scale CLEAN (WSClean's ``-join-channels``): one peak search, per-group fluxes.

Peaks are found on the integrated residual ``Σ w_g R_g`` (``w_g`` normalised imaging-weight
sums); the component at a peak takes ``gain × R_g(peak)`` in every group ``g`` (after an
optional spectral fit, a projection matrix from
:func:`radioflow.science.major_cycle.spectral_projection`), and each group's residual loses
that flux times its own PSF. The integrated image is updated with the same patches, so one
iteration costs ``G`` PSF-patch subtractions (``G × T`` for multi-scale, with ``T`` tracked
scale images).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

from .deconvolve import (
    _add_patch,
    _check_images,
    _check_params,
    _pick_scale,
    _psf_patch,
    _row_absmax,
    _subtract_patch,
    _window,
    scale_setup,
)


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


@njit(cache=True)
def _joined_multiscale_loop(tracked, integ, cross, kernels, track_of, bias, psf_peak, wn, proj, allowed, model,
                            gain, niter, threshold):  # pragma: no cover - compiled
    """Multi-scale CLEAN of tracked images ``(G, T, y, x)`` with peaks on their weighted sum ``integ (T, y, x)``.

    ``cross[g, s, t]`` is the patch a unit scale-``s`` component leaves in group ``g``'s tracked image ``t``.
    """
    ngroup, ntrack, ny, _ = tracked.shape
    nscale = track_of.shape[0]
    rowmax = np.empty((ntrack, ny))
    rowarg = np.zeros((ntrack, ny), dtype=np.int64)
    for t in range(ntrack):
        _row_absmax(integ[t], allowed[t], 0, ny, rowmax[t], rowarg[t])
    counts = np.zeros(nscale, dtype=np.int64)
    values = np.empty(ngroup)
    n = 0
    while n < niter:
        y0 = np.argmax(rowmax[0])
        if rowmax[0, y0] < 0 or rowmax[0, y0] <= threshold:
            break
        bs, by = _pick_scale(rowmax, track_of, bias)
        t = track_of[bs]
        bx = rowarg[t, by]
        for g in range(ngroup):
            values[g] = tracked[g, t, by, bx]
        amps = (gain / psf_peak[bs]) * (proj @ values)
        for u in range(ntrack):
            r0, r1 = by, by + 1
            for g in range(ngroup):
                a0, a1 = _subtract_patch(tracked[g, u], cross[g, bs, u], by, bx, amps[g])
                _subtract_patch(integ[u], cross[g, bs, u], by, bx, wn[g] * amps[g])
                r0, r1 = min(r0, a0), max(r1, a1)
            _row_absmax(integ[u], allowed[u], r0, r1, rowmax[u], rowarg[u])
        for g in range(ngroup):
            _add_patch(model[g], kernels[bs], by, bx, amps[g])
        counts[bs] += 1
        n += 1
    return n, max(rowmax[0].max(), 0.0), counts


def joined_multiscale(
    residuals: np.ndarray,
    psfs: np.ndarray,
    weights: np.ndarray,
    projection: np.ndarray,
    *,
    scales: Sequence[float] = (0, 4, 8, 16),
    scale_bias: float = 0.6,
    gain: float = 0.1,
    niter: int = 1000,
    threshold: float = 0.0,
    mask: np.ndarray | None = None,
    psf_cutoff: float = 0.0,
) -> tuple[np.ndarray, dict]:
    """Multi-scale CLEAN of residuals ``(G, y, x)`` with PSFs ``(G, y, x)``, peaks on the integrated image.

    As :func:`radioflow.science.deconvolve.multiscale`, with WSClean's joined-channel rules: the
    scale and position come from the integrated smoothed residuals ``Σ w_g K_s * R_g`` (with the
    scale bias); the component takes ``gain · (K_s * R_g)(p) / (K_s * PSF)(0)`` in every group
    (``PSF`` the integrated PSF, the fluxes optionally projected on a spectral polynomial) and each
    group's smoothed residuals lose it times the group's own cross PSFs ``K_s * K_t * PSF_g``.
    ``weights`` (G,) sum to 1. The cross PSFs take ``G·S·T`` patches of ``(2h+1)²`` doubles (``h`` the
    widest group PSF window at ``psf_cutoff`` plus twice the largest scale, at most N−1).
    Returns ``(model (G, y, x) Jy/pixel, stats)``; ``residuals`` are not changed.
    """
    _check_params(gain, niter, threshold)
    res = np.ascontiguousarray(residuals, dtype=np.float64)
    ngroup, ny, nx = res.shape
    psfs = np.asarray(psfs, np.float64)
    wn = np.ascontiguousarray(weights, dtype=np.float64)
    integrated_psf = np.tensordot(wn, psfs, axes=1)
    allowed = _check_images(res[0], integrated_psf, mask)[2]
    window = max(_window(p, psf_cutoff) for p in psfs)
    setup = scale_setup(integrated_psf, scales, scale_bias, psf_cutoff, ny, nx, window=window)
    cross = np.stack([setup.cross_psfs(p) for p in psfs])
    tracked = np.stack([setup.track(r) for r in res])
    integ = np.ascontiguousarray(np.tensordot(wn, tracked, axes=1))
    start = float(np.max(np.abs(integ[0][allowed]))) if allowed.any() else 0.0
    model = np.zeros_like(res)
    n, peak, counts = _joined_multiscale_loop(
        tracked, integ, cross, setup.kernels, setup.track_of, setup.bias, setup.psf_peak, wn,
        np.ascontiguousarray(projection, dtype=np.float64), setup.allowed(allowed), model, float(gain), int(niter),
        float(threshold))
    return model, {"niter": int(n), "peak": float(peak), "start_peak": start,
                   "components_per_scale": dict(zip(setup.scales, (int(c) for c in counts))),
                   "dropped_scales": setup.dropped}
