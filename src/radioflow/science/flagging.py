"""RFI flagging: an iterative SumThreshold flagger over time × frequency (after Offringa et al. 2010).

Every baseline and correlation is flagged at once: the arrays keep the dataset's
``(time, baseline, frequency, polarization)`` layout and all the work is done along axes 0
(time) and 2 (frequency) with cumulative sums, so there is no per-visibility Python loop.

Each iteration fits a smooth background to the unflagged amplitudes (masked Gaussian
smoothing), estimates the noise per baseline and correlation (median absolute deviation of the
residual), and runs SumThreshold along frequency then time: a window of ``M`` consecutive
unflagged samples whose mean residual exceeds ``χ_M = χ_1 / ρ^log2(M)`` noise sigmas is flagged.
Only excesses count: RFI adds power, and dips are the footprint of RFI on the smoothed background.
Thresholds start high and fall to ``threshold`` so that strong RFI does not bias the background.
A sample flagged in any correlation is flagged in all (as AOFlagger does).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import UsageError

TIME_AXIS, FREQ_AXIS = 0, 2


def _window_flags(res: np.ndarray, flag: np.ndarray, size: int, level: np.ndarray, axis: int) -> np.ndarray:
    """Samples inside any ``size``-long window (along ``axis``) whose unflagged mean exceeds ``level``."""
    n = res.shape[axis]
    if size > n:
        return np.zeros_like(flag)
    good = ~flag
    val = np.where(good, res, 0.0)
    pad = [(0, 0)] * res.ndim
    pad[axis] = (1, 0)
    csum = np.pad(np.cumsum(val, axis=axis), pad)
    ccnt = np.pad(np.cumsum(good, axis=axis, dtype=np.int32), pad)
    hi = [slice(None)] * res.ndim
    lo = [slice(None)] * res.ndim
    hi[axis] = slice(size, None)
    lo[axis] = slice(None, n - size + 1)
    wsum = csum[tuple(hi)] - csum[tuple(lo)]
    wcnt = ccnt[tuple(hi)] - ccnt[tuple(lo)]
    hit = (wcnt > 0) & (wsum > wcnt * level)
    # Spread each hit window over its `size` samples: a sample at i is covered by windows
    # starting in [i - size + 1, i].
    hpad = [(0, 0)] * res.ndim
    hpad[axis] = (size, size - 1)
    chit = np.cumsum(np.pad(hit, hpad).astype(np.int32), axis=axis)
    hi[axis] = slice(size, size + n)
    lo[axis] = slice(0, n)
    return (chit[tuple(hi)] - chit[tuple(lo)]) > 0


def sum_threshold(res: np.ndarray, flag: np.ndarray, sigma: np.ndarray, threshold: float,
                  max_window: int = 64, rho: float = 1.5) -> np.ndarray:
    """New flags of residuals ``res`` (4-D, flagged samples ignored): SumThreshold along frequency, then time.

    ``sigma`` broadcasts against ``res`` (noise per baseline and correlation); ``threshold`` is
    χ_1 in sigmas; windows double from 1 to ``max_window``.
    """
    out = flag.copy()
    for axis in (FREQ_AXIS, TIME_AXIS):
        size = 1
        while size <= max_window:
            level = sigma * (threshold / rho ** np.log2(size))
            out |= _window_flags(res, out, size, level, axis)
            size *= 2
    return out


def _background(amp: np.ndarray, flag: np.ndarray, smooth: tuple[float, float]) -> np.ndarray:
    """Masked Gaussian smoothing of ``amp`` over time and frequency (flagged samples carry no weight)."""
    w = (~flag).astype(np.float64)
    sig = (smooth[0], 0.0, smooth[1], 0.0)
    num = gaussian_filter(np.where(flag, 0.0, amp), sig, mode="nearest", truncate=3.0)
    den = gaussian_filter(w, sig, mode="nearest", truncate=3.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        bg = num / den
    return np.where(den > 1e-6, bg, 0.0)


def _robust_sigma(res: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """1.4826 × median absolute residual of the unflagged samples, per baseline and correlation."""
    masked = np.where(flag, np.nan, np.abs(res))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mad = np.nanmedian(masked, axis=(TIME_AXIS, FREQ_AXIS), keepdims=True)
    mad = np.where(np.isfinite(mad) & (mad > 0), mad, np.inf)
    return 1.4826 * mad


def flag_rfi(vis: np.ndarray, flag: np.ndarray | None = None, *, threshold: float = 6.0,
             iterations: int = 3, max_window: int = 64, smooth: tuple[float, float] = (2.0, 4.0),
             rho: float = 1.5) -> np.ndarray:
    """Flags ``(time, baseline, frequency, polarization)`` of ``vis``: the input flags plus RFI found.

    ``threshold`` is the single-sample threshold χ_1 in noise sigmas of the final iteration
    (earlier iterations use 4× and 2× it); ``smooth`` the background's Gaussian widths in
    time steps and channels.
    """
    vis = np.asarray(vis)
    if vis.ndim != 4:
        raise UsageError(f"flag_rfi needs visibilities (time, baseline, frequency, polarization), got shape {vis.shape}.")
    if threshold <= 0 or iterations < 1:
        raise UsageError(f"flag_rfi: threshold must be > 0 and iterations >= 1 (got {threshold}, {iterations}).")
    flag = np.zeros(vis.shape, bool) if flag is None else np.asarray(flag, bool).copy()
    finite = np.isfinite(vis)
    flag |= ~finite
    amp = np.abs(np.where(finite, vis, 0)).astype(np.float64)
    out = flag
    for i in range(iterations):
        level = threshold * 2.0 ** (iterations - 1 - i)
        res = amp - _background(amp, out, smooth)
        sigma = _robust_sigma(res, out)
        found = sum_threshold(res, out, sigma, level, max_window=max_window, rho=rho)
        out = flag | found.any(axis=3, keepdims=True)
    return np.broadcast_to(out, vis.shape).copy()
