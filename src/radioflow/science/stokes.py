"""Stokes I from the parallel hands: WSClean 3.1's weight combination, or the optimal one.

WSClean 3.1 (``msproviders/msprovider.cpp``, ``MSProvider::CopyData`` and ``CopyWeights``)
forms I = (XX + YY)/2 (RR/LL alike; a non-finite I becomes 0) with the visibility weight
``4·min(w_XX, w_YY)``, zero when either hand is flagged or its value is not finite. That is
not the inverse variance of the average; ``"optimal"`` is: ``4/(1/w_XX + 1/w_YY)``. With
equal hand weights both are proportional (imaging normalises by the weight sum, and the
uniform/Briggs factors are scale-free), so they give the same image; they differ only where
``WEIGHT_SPECTRUM`` differs between the hands.

Plain numpy (no numba): the work is in blocks, so temporaries stay small, and the results may
overwrite the front of the inputs' own memory (a dataset read only to be imaged).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

WeightCombination = Literal["wsclean", "optimal"]
WEIGHT_COMBINATIONS: tuple[str, ...] = ("wsclean", "optimal")

_BLOCK = 1 << 18  # samples per block: a few MB of temporaries


def check_combination(combination: str) -> WeightCombination:
    """``combination`` if it is known, else a ValueError naming the choices."""
    if combination not in WEIGHT_COMBINATIONS:
        raise ValueError(f"unknown weight combination '{combination}': use {' or '.join(WEIGHT_COMBINATIONS)}")
    return combination  # type: ignore[return-value]


def combine_weights(wa: np.ndarray, wb: np.ndarray, combination: WeightCombination = "wsclean") -> np.ndarray:
    """Stokes I weight (float32) of two parallel hands with weights ``wa``, ``wb`` (unflagged)."""
    a = np.asarray(wa, np.float32)
    b = np.asarray(wb, np.float32)
    if combination == "wsclean":
        return np.float32(4.0) * np.minimum(a, b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((a64 > 0) & (b64 > 0), 4.0 * a64 * b64 / (a64 + b64), 0.0)
    return out.astype(np.float32)


def stokes_i_hands(data: np.ndarray, weight: np.ndarray, flag: np.ndarray, a: int, b: int,
                   combination: WeightCombination = "wsclean", *, overwrite: bool = False,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stokes I ``(vis complex64, weight float32, flag bool)`` of ``n`` samples ``(n, ncorr)``.

    ``a``/``b`` index the two parallel hands. A sample is flagged (weight 0) when either hand
    is flagged or not finite, as in WSClean. ``overwrite`` writes the results into the front of
    the inputs' memory (which must be contiguous and writeable) and returns views of it.
    """
    combination = check_combination(combination)
    n = data.shape[0]
    if overwrite:
        # Block k writes samples [i, j), flat positions below j·ncorr where block k+1 starts reading.
        vis, w, f = data.reshape(-1)[:n], weight.reshape(-1)[:n], flag.reshape(-1)[:n]
    else:
        vis, w, f = np.empty(n, np.complex64), np.empty(n, np.float32), np.empty(n, bool)
    for i in range(0, n, _BLOCK):
        j = min(i + _BLOCK, n)
        da, db = data[i:j, a], data[i:j, b]
        bad = flag[i:j, a] | flag[i:j, b] | ~np.isfinite(da) | ~np.isfinite(db)
        wi = combine_weights(weight[i:j, a], weight[i:j, b], combination)
        vi = (da + db) * np.float32(0.5)
        wi[bad] = 0.0
        vi[~np.isfinite(vi)] = 0.0
        vis[i:j], w[i:j], f[i:j] = vi, wi, bad
    return vis, w, f
