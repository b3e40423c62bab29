"""Apply or remove solution-interval gains per visibility in one numba pass.

``vis · g_p conj(g_q)`` (corrupt) or ``vis / (g_p conj(g_q))`` (correct; samples whose gain
product is 0 pass unchanged) with the gain of each sample looked up from its solution interval,
so the per-visibility gain products are never materialised. Parallel over time steps (each
writes its own output rows, so results do not depend on the thread count) and GIL-free.
"""
from __future__ import annotations

import numba
import numpy as np

from .corrupt import receptor_index


@numba.njit(cache=True, nogil=True, parallel=True)
def _kernel(vis, gains, ant1, ant2, ip, iq, ti, fi, divide, out):  # pragma: no cover - compiled
    nt, nb, nf, nc = vis.shape
    for t in numba.prange(nt):
        st = t // ti
        for b in range(nb):
            a1 = ant1[b]
            a2 = ant2[b]
            for f in range(nf):
                sf = f // fi
                g = 0j
                for c in range(nc):
                    if c == 0 or ip[c] != ip[c - 1] or iq[c] != iq[c - 1]:  # else the same gain product
                        g = np.complex128(gains[st, a1, sf, ip[c]]) * np.conj(np.complex128(gains[st, a2, sf, iq[c]]))
                    v = np.complex128(vis[t, b, f, c])
                    if not divide:
                        out[t, b, f, c] = v * g
                    elif g == 0:
                        out[t, b, f, c] = v
                    else:
                        out[t, b, f, c] = v / g


def gain_multiply(vis: np.ndarray, gains: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, time_interval: int,
                  freq_interval: int, divide: bool, dtype) -> np.ndarray:
    """``vis`` times (or divided by, where non-zero) ``g_p conj(g_q)`` of the sample's interval, as ``dtype``.

    ``vis`` complex ``(time, baseline, frequency, correlation)``; ``gains`` ``(nsoltime, antenna,
    nsolchan, receptor)`` already checked against ``vis`` and the intervals.
    """
    ip, iq = receptor_index(vis.shape[3], gains.shape[3])
    out = np.empty(vis.shape, dtype)
    _kernel(np.ascontiguousarray(vis), np.ascontiguousarray(gains), np.asarray(ant1, np.intp),
            np.asarray(ant2, np.intp), np.asarray(ip, np.intp), np.asarray(iq, np.intp), int(time_interval),
            int(freq_interval), bool(divide), out)
    return out
