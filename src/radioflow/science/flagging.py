"""RFI flagging: an iterative SumThreshold flagger over time × frequency (after Offringa et al. 2010).

The arrays keep the dataset's ``(time, baseline, frequency, polarization)`` layout: the
background and noise are vectorised NumPy/SciPy over all baselines at once, and SumThreshold is
a parallel numba kernel over baselines × correlations with a sliding window sum along each
line (no per-visibility Python loop).

Each iteration fits a smooth background to the unflagged amplitudes (masked Gaussian
smoothing), estimates the noise per baseline and correlation (median absolute deviation of the
residual), and runs SumThreshold along frequency then time: a window of ``M`` consecutive
unflagged samples whose mean residual exceeds ``χ_M = χ_1 / ρ^log2(M)`` noise sigmas is flagged.
Only excesses count: RFI adds power, and dips are the footprint of RFI on the smoothed background.
Thresholds start high and fall to ``threshold`` so that strong RFI does not bias the background.
A sample flagged in any correlation is flagged in all (as AOFlagger does).
"""
from __future__ import annotations

import numba
import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import UsageError


@numba.njit(cache=True, nogil=True)
def _line(res, flag, n, level, size, hit):  # pragma: no cover - compiled
    """SumThreshold of one line: ``hit[i]`` set where a ``size`` window over i exceeds ``level``."""
    s = 0.0
    c = 0
    cover = 0
    for i in range(n + size - 1):
        if i < n and not flag[i]:
            s += res[i]
            c += 1
        j = i - size
        if j >= 0 and not flag[j]:
            s -= res[j]
            c -= 1
        start = i - size + 1
        if 0 <= start and i < n and c > 0 and s > c * level:
            cover = size  # the window [start, i] exceeds: mark it
            for k in range(start, i + 1):
                hit[k] = True
    return cover


@numba.njit(parallel=True, cache=True)
def _sum_threshold_kernel(res, flag, sigma, threshold, max_window, rho, out):  # pragma: no cover - compiled
    nt, nb, nf, npol = res.shape
    for q in numba.prange(nb * npol):
        b = q // npol
        p = q % npol
        cur = flag[:, b, :, p].copy()
        sig = sigma[b, p]
        for axis in range(2):  # frequency, then time
            n = nf if axis == 0 else nt
            m = nt if axis == 0 else nf
            size = 1
            while size <= max_window and size <= n:
                level = sig * threshold / rho ** np.log2(size)
                new = np.zeros((nt, nf), np.bool_)
                line = np.empty(n, np.float64)
                lflag = np.empty(n, np.bool_)
                lhit = np.zeros(n, np.bool_)
                for r in range(m):
                    for i in range(n):
                        if axis == 0:
                            line[i] = res[r, b, i, p]
                            lflag[i] = cur[r, i]
                        else:
                            line[i] = res[i, b, r, p]
                            lflag[i] = cur[i, r]
                        lhit[i] = False
                    _line(line, lflag, n, level, size, lhit)
                    for i in range(n):
                        if lhit[i]:
                            if axis == 0:
                                new[r, i] = True
                            else:
                                new[i, r] = True
                cur |= new
                size *= 2
        for t in range(nt):
            for f in range(nf):
                out[t, b, f, p] = cur[t, f]


def sum_threshold(res: np.ndarray, flag: np.ndarray, sigma: np.ndarray, threshold: float,
                  max_window: int = 64, rho: float = 1.5) -> np.ndarray:
    """New flags of residuals ``res`` (4-D, flagged samples ignored): SumThreshold along frequency, then time.

    ``sigma`` (noise per baseline and correlation, broadcastable to ``(1, baseline, 1, pol)``);
    ``threshold`` is χ_1 in sigmas; windows double from 1 to ``max_window``. A parallel numba
    kernel over baselines × correlations, a sliding sum along each line: O(samples) per window size.
    """
    res = np.ascontiguousarray(res, np.float64)
    sig = np.ascontiguousarray(np.broadcast_to(sigma, (1, res.shape[1], 1, res.shape[3]))[0, :, 0, :], np.float64)
    out = np.empty(res.shape, np.bool_)
    _sum_threshold_kernel(res, np.ascontiguousarray(flag, np.bool_), sig, float(threshold), int(max_window),
                          float(rho), out)
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


@numba.njit(parallel=True, cache=True)
def _mad_kernel(res, flag, out):  # pragma: no cover - compiled
    nt, nb, nf, npol = res.shape
    for q in numba.prange(nb * npol):
        b = q // npol
        p = q % npol
        buf = np.empty(nt * nf, np.float64)
        n = 0
        for t in range(nt):
            for f in range(nf):
                if not flag[t, b, f, p]:
                    buf[n] = abs(res[t, b, f, p])
                    n += 1
        out[b, p] = np.median(buf[:n]) if n > 0 else np.inf


def _robust_sigma(res: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """1.4826 × median absolute residual of the unflagged samples, per baseline and correlation
    (a parallel numba kernel: NumPy's nanmedian over a 4-D array loops in Python per line)."""
    out = np.empty((res.shape[1], res.shape[3]), np.float64)
    _mad_kernel(np.ascontiguousarray(res, np.float64), np.ascontiguousarray(flag, np.bool_), out)
    mad = np.where(np.isfinite(out) & (out > 0), out, np.inf)
    return 1.4826 * mad.reshape(1, res.shape[1], 1, res.shape[3])


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
