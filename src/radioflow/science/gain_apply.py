"""Apply or remove solution-interval gains per visibility in one numba pass.

``vis · g_p conj(g_q)`` (corrupt) or ``vis / (g_p conj(g_q))`` (correct) with the gain of each
sample looked up from its solution interval, so the per-visibility gain products are never
materialised. The arithmetic is NumPy's, operation for operation: its SIMD complex product
(fused multiply-adds, as NumPy dispatches on FMA CPUs) and Smith's division of its complex
``divide``, so the results are bit-identical to ``vis * prod`` and
``np.divide(vis, prod, where=prod != 0)``. Serial and GIL-free, like the solver kernels:
parallelism comes from the workflow.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .corrupt import receptor_index


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma.f64``)."""
    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@numba.njit(cache=True, nogil=True)
def _kernel(vis, gains, ant1, ant2, ip, iq, ti, fi, divide, out):  # pragma: no cover - compiled
    nt, nb, nf, nc = vis.shape
    for t in range(nt):
        st = t // ti
        for b in range(nb):
            a1 = ant1[b]
            a2 = ant2[b]
            for f in range(nf):
                sf = f // fi
                pr = pi = rat = scl = 0.0
                for c in range(nc):
                    if c == 0 or ip[c] != ip[c - 1] or iq[c] != iq[c - 1]:  # else the same gain product
                        gp = gains[st, a1, sf, ip[c]]
                        gq = gains[st, a2, sf, iq[c]]
                        qr = gq.real
                        qi = -gq.imag
                        pr = _fma(gp.real, qr, -(gp.imag * qi))
                        pi = _fma(gp.real, qi, gp.imag * qr)
                        if abs(pr) >= abs(pi):
                            rat = pi / pr if pr != 0 else 0.0
                            scl = 1.0 / (pr + pi * rat) if pr != 0 else 0.0
                        else:
                            rat = pr / pi
                            scl = 1.0 / (pi + pr * rat)
                    v = vis[t, b, f, c]
                    vr = np.float64(v.real)
                    vi = np.float64(v.imag)
                    if not divide:
                        out[t, b, f, c] = complex(_fma(vr, pr, -(vi * pi)), _fma(vr, pi, vi * pr))
                    elif pr == 0 and pi == 0:
                        out[t, b, f, c] = v
                    elif abs(pr) >= abs(pi):
                        out[t, b, f, c] = complex((vr + vi * rat) * scl, (vi - vr * rat) * scl)
                    else:
                        out[t, b, f, c] = complex((vr * rat + vi) * scl, (vi * rat - vr) * scl)


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
