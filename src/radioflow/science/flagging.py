"""RFI flagging: an iterative SumThreshold flagger over time × frequency (after Offringa et al. 2010).

The arrays keep the dataset's ``(time, baseline, frequency, polarization)`` layout. Baselines
are independent, so every iteration runs in one parallel numba kernel over baselines, each
baseline's time × frequency planes staying in cache: background, noise and SumThreshold (a
sliding window sum along each line) with no per-visibility Python loop. The background's
smoothing is ``scipy.ndimage.gaussian_filter`` (mode nearest, truncate 3).

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

from ..errors import UsageError


@numba.njit(cache=True, nogil=True)
def _line(res, flag, n, level, size, hit):  # pragma: no cover - compiled
    """SumThreshold of one line: ``hit[i]`` set where a ``size`` window over i exceeds ``level``.

    A sliding sum of the unflagged samples (flagged ones add 0.0, which leaves every sum's value
    and comparison unchanged), branch-free; windows ending past the line are never tested, so
    the slide stops at its end.
    """
    s = 0.0
    c = 0
    for i in range(min(size - 1, n)):
        s += 0.0 if flag[i] else res[i]
        c += 0 if flag[i] else 1
    marked = 0  # hit[:marked] already covers every window found so far
    for i in range(size - 1, n):
        s += 0.0 if flag[i] else res[i]
        c += 0 if flag[i] else 1
        j = i - size
        if j >= 0:
            s -= 0.0 if flag[j] else res[j]
            c -= 0 if flag[j] else 1
        if c > 0 and s > c * level:
            for k in range(max(i - size + 1, marked), i + 1):
                hit[k] = True
            marked = i + 1


@numba.njit(cache=True, nogil=True)
def _sum_threshold_lines(res, cur, sig, threshold, max_window, rho, hit):  # pragma: no cover - compiled
    """SumThreshold along each row of ``res`` (window sizes 1, 2, 4, …), ORing hits into ``cur``.

    Rows are independent, so each runs through all window sizes while in cache. A size whose
    threshold exceeds the row's largest unflagged residual (with a margin above the running
    sum's rounding) cannot be exceeded by any window mean and is skipped.
    """
    m, n = res.shape
    margin = n * n * 1e-15 + 1e-12
    for r in range(m):
        row = res[r]
        flags = cur[r]
        top = -np.inf
        big = 0.0
        for i in range(n):
            if not flags[i]:
                top = max(top, row[i])
                big = max(big, abs(row[i]))
        size = 1
        while size <= max_window and size <= n:
            level = sig * threshold / rho ** np.log2(size)
            if top + margin * big >= level * (1.0 - 1e-15):
                hit[:n] = False
                _line(row, flags, n, level, size, hit)
                for i in range(n):
                    if hit[i]:
                        flags[i] = True
            size *= 2


@numba.njit(cache=True, nogil=True)
def _sum_threshold_plane(res, cur, sig, threshold, max_window, rho, res_t, cur_t, hit):  # pragma: no cover
    """SumThreshold of one ``(time, frequency)`` plane along frequency, then time; ORs hits into ``cur``."""
    nt, nf = res.shape
    _sum_threshold_lines(res, cur, sig, threshold, max_window, rho, hit)
    for t in range(nt):
        for f in range(nf):
            res_t[f, t] = res[t, f]
            cur_t[f, t] = cur[t, f]
    _sum_threshold_lines(res_t, cur_t, sig, threshold, max_window, rho, hit)
    for t in range(nt):
        for f in range(nf):
            cur[t, f] = cur_t[f, t]


@numba.njit(cache=True, nogil=True)
def _smooth(x, w, axis, pad, out):  # pragma: no cover - compiled
    """``scipy.ndimage.correlate1d`` of a plane with the symmetric weights ``w`` (centre first), mode 'nearest'.

    Same summation order per sample as SciPy (outermost pair first), so the result is
    bit-identical; ``pad`` is scratch of at least ``(nt + 2r) * (nf + 2r)`` values.
    """
    nt, nf = x.shape
    r = w.size - 1
    if axis == 0:
        xp = pad[:(nt + 2 * r) * nf].reshape(nt + 2 * r, nf)
        for t in range(nt + 2 * r):
            src = min(max(t - r, 0), nt - 1)
            for f in range(nf):
                xp[t, f] = x[src, f]
        for t in range(nt):
            for f in range(nf):
                out[t, f] = xp[t + r, f] * w[0]
        for j in range(r, 0, -1):
            for t in range(nt):
                for f in range(nf):
                    out[t, f] += (xp[t + r - j, f] + xp[t + r + j, f]) * w[j]
    else:
        m = nf + 2 * r
        xp = pad[:nt * m].reshape(nt, m)
        for t in range(nt):
            for f in range(m):
                xp[t, f] = x[t, min(max(f - r, 0), nf - 1)]
        for t in range(nt):
            for f in range(nf):
                out[t, f] = xp[t, f + r] * w[0]
            for j in range(r, 0, -1):
                for f in range(nf):
                    out[t, f] += (xp[t, f + r - j] + xp[t, f + r + j]) * w[j]


@numba.njit(cache=True, nogil=True)
def _residual(a, cur, wt, wf, have_den, num, den, den_flags, tmp, pad, buf, res, sigma):  # pragma: no cover
    """Amplitude minus masked Gaussian background of one plane into ``res``; its MAD noise into ``sigma[0]``.

    The smoothed weights ``den`` depend on the flags only: they are reused while ``cur`` equals
    ``den_flags`` (``have_den``: ``den`` holds a result).
    """
    nt, nf = a.shape
    same = have_den
    for t in range(nt):
        for f in range(nf):
            num[t, f] = 0.0 if cur[t, f] else a[t, f]
            if cur[t, f] != den_flags[t, f]:
                same = False
    _smooth(num, wt, 0, pad, tmp)
    _smooth(tmp, wf, 1, pad, num)
    if not same:
        for t in range(nt):
            for f in range(nf):
                den[t, f] = 0.0 if cur[t, f] else 1.0
                den_flags[t, f] = cur[t, f]
        _smooth(den, wt, 0, pad, tmp)
        _smooth(tmp, wf, 1, pad, den)
    n = 0
    for t in range(nt):
        for f in range(nf):
            bg = num[t, f] / den[t, f] if den[t, f] > 1e-6 else 0.0
            res[t, f] = a[t, f] - bg
            if not cur[t, f]:
                buf[n] = abs(res[t, f])
                n += 1
    mad = np.median(buf[:n]) if n > 0 else np.inf
    if not (np.isfinite(mad) and mad > 0):
        mad = np.inf
    sigma[0] = 1.4826 * mad


@numba.njit(parallel=True, cache=True)
def _flag_kernel(amp, flag, levels, wt, wf, max_window, rho, out):  # pragma: no cover - compiled
    """All iterations of :func:`flag_rfi` for every baseline (parallel over baselines).

    Per iteration and correlation: masked Gaussian background, residual, MAD noise and
    SumThreshold from the current flags; a sample found in any correlation is then flagged in all.
    A plane whose flags did not change since the previous iteration keeps its residual and noise.
    """
    nt, nb, nf, npol = amp.shape
    for b in numba.prange(nb):
        a = np.empty((npol, nt, nf), np.float64)
        cur = np.empty((npol, nt, nf), np.bool_)
        for t in range(nt):
            for f in range(nf):
                for p in range(npol):
                    a[p, t, f] = amp[t, b, f, p]
                    cur[p, t, f] = flag[t, b, f, p]
        num = np.empty((nt, nf), np.float64)
        den = np.empty((nt, nf), np.float64)
        den_flags = np.empty((nt, nf), np.bool_)  # the flags ``den`` was smoothed for
        tmp = np.empty((nt, nf), np.float64)
        res = np.empty((npol, nt, nf), np.float64)  # residual and noise of each plane ...
        sigma = np.empty(npol, np.float64)
        res_flags = np.empty((npol, nt, nf), np.bool_)  # ... for these flags
        found = np.empty((npol, nt, nf), np.bool_)
        buf = np.empty(nt * nf, np.float64)
        res_t = np.empty((nf, nt), np.float64)
        cur_t = np.empty((nf, nt), np.bool_)
        hit = np.empty(max(nt, nf), np.bool_)
        pad = np.empty((nt + 2 * wt.size) * (nf + 2 * wf.size), np.float64)
        for it in range(levels.size):
            for p in range(npol):
                fresh = it > 0  # flags unchanged since the last iteration: same residual and noise
                for t in range(nt):
                    for f in range(nf):
                        if cur[p, t, f] != res_flags[p, t, f]:
                            fresh = False
                if not fresh:
                    _residual(a[p], cur[p], wt, wf, it > 0 or p > 0, num, den, den_flags, tmp, pad, buf,
                              res[p], sigma[p:p + 1])
                    res_flags[p] = cur[p]
                found[p] = cur[p]
                _sum_threshold_plane(res[p], found[p], sigma[p], levels[it], max_window, rho, res_t, cur_t, hit)
            for t in range(nt):
                for f in range(nf):
                    anyp = False
                    for p in range(npol):
                        anyp |= found[p, t, f]
                    for p in range(npol):
                        cur[p, t, f] = flag[t, b, f, p] | anyp
        for t in range(nt):
            for f in range(nf):
                for p in range(npol):
                    out[t, b, f, p] = cur[p, t, f]


def _gaussian_weights(sigma: float, truncate: float = 3.0) -> np.ndarray:
    """Half of SciPy's ``gaussian_filter1d`` kernel (centre first): the same weights, bit for bit."""
    if sigma <= 1e-15:
        return np.ones(1)
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    phi = phi / phi.sum()
    return np.ascontiguousarray(phi[radius:])


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
    flag = np.zeros(vis.shape, bool) if flag is None else np.ascontiguousarray(flag, bool)
    finite = np.isfinite(vis)
    if finite.all():
        amp = np.abs(vis)  # the kernel takes it to float64
    else:
        flag = flag | ~finite
        amp = np.abs(np.where(finite, vis, 0))
    levels = np.array([threshold * 2.0 ** (iterations - 1 - i) for i in range(iterations)], np.float64)
    out = np.empty(vis.shape, np.bool_)
    _flag_kernel(np.ascontiguousarray(amp), flag, levels, _gaussian_weights(smooth[0]), _gaussian_weights(smooth[1]), int(max_window),
                 float(rho), out)
    return out
