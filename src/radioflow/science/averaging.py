"""Time and frequency averaging of a visibility dataset, with weights and flags as DP3's averager.

Per output sample: data = Σ w·V / Σ w over the unflagged inputs, weight = Σ w of those inputs,
flag = False. When every input is flagged the output is flagged, its data is the weighted mean
of all inputs and its weight the sum of all their weights (checked against DP3 6.6). UVW and TIME are averaged over the time bin, frequencies over
the channel bin; channel widths add. A last, shorter bin keeps the leftover samples (as DP3).
One numba pass over the samples computes every output (no Python loop per sample). Its
arithmetic is that of the NumPy formulation it replaced, step for step (``np.add.reduceat``
over time, then over channels, each the bin's first sample plus NumPy's pairwise sum of the
rest; NumPy's complex-by-real product and its Smith division by ``Σ w + 0i``), so the results
are bit-identical to it.
"""
from __future__ import annotations

import numba
import numpy as np
import xarray as xr

from ..errors import UsageError
from ..vis.schema import VIS_DIMS


def _starts(n: int, step: int) -> np.ndarray:
    return np.arange(0, n, step)


@numba.njit(cache=True, nogil=True)
def _cdiv_real(nr, ni, d):  # pragma: no cover - compiled
    """``(nr + i ni) / d`` for real ``d`` as NumPy computes it (complex division by ``d + 0i``)."""
    if d == 0.0:
        return complex(nr / abs(d), ni / abs(d))
    rat = 0.0 / d
    scl = 1.0 / (d + 0.0 * rat)
    return complex((nr + ni * rat) * scl, (ni - nr * rat) * scl)


@numba.njit(cache=True, nogil=True)
def _block(re, im, lo, count, cplx):  # pragma: no cover - compiled
    """NumPy's pairwise-sum leaf (at most 128 values): doubles ``re[lo:lo + count]`` with 8
    accumulators, or complex (``re``, ``im``) with 4; returns ``(Σ re, Σ im)``."""
    n = 2 * count if cplx else count
    rr = -0.0
    ri = -0.0
    if n < 8:
        for i in range(lo, lo + count):
            rr += re[i]
            if cplx:
                ri += im[i]
        return rr, ri
    if not cplx:
        r0, r1, r2, r3 = re[lo], re[lo + 1], re[lo + 2], re[lo + 3]
        r4, r5, r6, r7 = re[lo + 4], re[lo + 5], re[lo + 6], re[lo + 7]
        i = lo + 8
        stop = lo + n - n % 8
        while i < stop:
            r0 += re[i]
            r1 += re[i + 1]
            r2 += re[i + 2]
            r3 += re[i + 3]
            r4 += re[i + 4]
            r5 += re[i + 5]
            r6 += re[i + 6]
            r7 += re[i + 7]
            i += 8
        rr = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for k in range(i, lo + count):
            rr += re[k]
        return rr, ri
    a0, a1, a2, a3 = re[lo], re[lo + 1], re[lo + 2], re[lo + 3]
    b0, b1, b2, b3 = im[lo], im[lo + 1], im[lo + 2], im[lo + 3]
    k = lo + 4
    stop = lo + (n - n % 8) // 2
    while k < stop:
        a0 += re[k]
        a1 += re[k + 1]
        a2 += re[k + 2]
        a3 += re[k + 3]
        b0 += im[k]
        b1 += im[k + 1]
        b2 += im[k + 2]
        b3 += im[k + 3]
        k += 4
    rr = (a0 + a1) + (a2 + a3)
    ri = (b0 + b1) + (b2 + b3)
    for j in range(k, lo + count):
        rr += re[j]
        ri += im[j]
    return rr, ri


@numba.njit(cache=True, nogil=True)
def _pairwise(re, im, lo, count, cplx):  # pragma: no cover - compiled
    """NumPy's pairwise sum of ``count`` doubles (or complex numbers) from ``lo``: halves split at a
    multiple of 8 values until a leaf holds at most 128. Evaluated with an explicit stack (numba's
    cache cannot hold recursive functions)."""
    if (2 * count if cplx else count) <= 128:
        return _block(re, im, lo, count, cplx)
    slo = np.empty(64, np.int64)
    scount = np.empty(64, np.int64)
    sstate = np.empty(64, np.int64)
    vre = np.empty(64, np.float64)
    vim = np.empty(64, np.float64)
    sp = 1
    vp = 0
    slo[0], scount[0], sstate[0] = lo, count, 0
    while sp > 0:
        top = sp - 1
        l, c = slo[top], scount[top]
        n = 2 * c if cplx else c
        if n <= 128:
            vre[vp], vim[vp] = _block(re, im, l, c, cplx)
            vp += 1
            sp -= 1
            continue
        n2 = n // 2
        n2 -= n2 % 8
        c2 = n2 // 2 if cplx else n2
        if sstate[top] == 0:
            sstate[top] = 1
            slo[sp], scount[sp], sstate[sp] = l, c2, 0
            sp += 1
        elif sstate[top] == 1:
            sstate[top] = 2
            slo[sp], scount[sp], sstate[sp] = l + c2, c - c2, 0
            sp += 1
        else:
            vre[vp - 2] = vre[vp - 2] + vre[vp - 1]
            vim[vp - 2] = vim[vp - 2] + vim[vp - 1]
            vp -= 1
            sp -= 1
    return vre[0], vim[0]


@numba.njit(cache=True, nogil=True)
def _bin_sums(x, n, out, k):  # pragma: no cover - compiled
    """``np.add.reduceat`` of one bin, as NumPy does it (first element + pairwise sum of the rest):
    rows 0–2 of ``x[:, :n]`` real, rows 3–8 three complex (re, im) pairs; results go to ``out[:, k]``."""
    for q in range(3):
        out[q, k] = x[q, 0] + _pairwise(x[q], x[q], 1, n - 1, False)[0]
    for q in range(3, 9, 2):
        rr, ri = _pairwise(x[q], x[q + 1], 1, n - 1, True)
        out[q, k] = x[q, 0] + rr
        out[q + 1, k] = x[q + 1, 0] + ri


@numba.njit(cache=True, nogil=True)
def _sample(data, weight, flag, t, b, f, c, x):  # pragma: no cover - compiled
    """The summed quantities of one sample into ``x`` (rows of :func:`_average_kernel`); 1 if unflagged."""
    fl = flag[t, b, f, c]
    w = np.float64(weight[t, b, f, c])
    dr = np.float64(data[t, b, f, c].real)
    di = np.float64(data[t, b, f, c].imag)
    gw = 0.0 if fl else w
    x[0] = gw
    x[1] = w
    x[2] = 1.0
    x[3] = 0.0 if fl else dr * gw + -(di * 0.0)  # NumPy's (dr + i di)·(w + 0i)
    x[4] = 0.0 if fl else di * gw + dr * 0.0
    x[5] = dr * w + -(di * 0.0)
    x[6] = di * w + dr * 0.0
    x[7] = dr
    x[8] = di
    return 0 if fl else 1


@numba.njit(parallel=True, cache=True)
def _average_kernel(data, weight, flag, ts, tn, fs, fn, out, out_weight, out_flag):  # pragma: no cover
    """One data column averaged into ``out`` (plus the shared output weight and flag).

    Sums (rows): Σ good w, Σ w, count, Σ good data·w, Σ data·w, Σ data (complex as re, im rows);
    over time per channel first, then over the channels, as ``np.add.reduceat`` along axis 0 then 2.
    Bins of at most 4 samples (NumPy then sums the rest sequentially) take a scalar fast path.
    Output time bins are independent: parallel over them.
    """
    nb, nc = data.shape[1], data.shape[3]
    for tb in numba.prange(ts.size):
        xt = np.empty((9, max(tn.max(), 1)), np.float64)
        col = np.empty((9, max(fn.max(), 1)), np.float64)
        acc = np.empty((9, 1), np.float64)
        x = np.empty(9, np.float64)
        first = np.empty(9, np.float64)
        rest = np.empty(9, np.float64)
        small_t = tn[tb] <= 4
        for b in range(nb):
            for fb in range(fs.size):
                small_f = fn[fb] <= 4
                for c in range(nc):
                    ngood = 0
                    for kf in range(fn[fb]):
                        f = fs[fb] + kf
                        if small_t:
                            for kt in range(tn[tb]):
                                ngood += _sample(data, weight, flag, ts[tb] + kt, b, f, c, x)
                                if kt == 0:
                                    first[:] = x
                                    rest[:] = -0.0
                                else:
                                    for k in range(9):
                                        rest[k] += x[k]
                            for k in range(9):
                                col[k, kf] = first[k] + rest[k]
                        else:
                            for kt in range(tn[tb]):
                                ngood += _sample(data, weight, flag, ts[tb] + kt, b, f, c, x)
                                xt[:, kt] = x
                            _bin_sums(xt, tn[tb], col, kf)
                    if small_f:
                        for k in range(9):
                            r = -0.0
                            for kf in range(1, fn[fb]):
                                r += col[k, kf]
                            acc[k, 0] = col[k, 0] + r
                    else:
                        _bin_sums(col, fn[fb], acc, 0)
                    wsum, wall = acc[0, 0], acc[1, 0]
                    flagged = ngood == 0
                    if not (flagged or wsum <= 0):
                        avg = _cdiv_real(acc[3, 0], acc[4, 0], wsum)
                    elif wall > 0:
                        avg = _cdiv_real(acc[5, 0], acc[6, 0], wall)
                    else:
                        avg = _cdiv_real(acc[7, 0], acc[8, 0], acc[2, 0])
                    out[tb, b, fb, c] = avg
                    out_flag[tb, b, fb, c] = flagged
                    out_weight[tb, b, fb, c] = wall if flagged else wsum


def average_arrays(vis: dict[str, np.ndarray], weight: np.ndarray, flag: np.ndarray, timestep: int,
                   freqstep: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Average data columns ``vis`` (name -> 4-D complex) sharing ``weight`` and ``flag``.

    Returns ``(averaged columns, weight, flag)``.
    """
    if timestep < 1 or freqstep < 1:
        raise UsageError(f"Averaging steps must be >= 1 (got timestep={timestep}, freqstep={freqstep}).")
    flag = np.ascontiguousarray(flag, bool)
    weight = np.ascontiguousarray(weight)
    ts, fs = _starts(flag.shape[0], timestep), _starts(flag.shape[2], freqstep)
    tn, fn = np.diff(np.append(ts, flag.shape[0])), np.diff(np.append(fs, flag.shape[2]))
    shape = (ts.size, flag.shape[1], fs.size, flag.shape[3])
    out_weight, out_flag = np.empty(shape, weight.dtype), np.empty(shape, bool)
    out: dict[str, np.ndarray] = {}
    for name, data in (vis.items() if vis else [("", np.zeros(flag.shape, np.complex64))]):
        data = np.asarray(data)
        cdata = np.ascontiguousarray(data if np.iscomplexobj(data) else data.astype(np.complex128))
        avg = np.empty(shape, cdata.dtype)
        _average_kernel(cdata, weight, flag, ts, tn, fs, fn, avg, out_weight, out_flag)
        if name:
            out[name] = avg if np.iscomplexobj(data) else avg.real.astype(data.dtype)
    return out, out_weight, out_flag


def average_dataset(ds: xr.Dataset, timestep: int = 1, freqstep: int = 1) -> xr.Dataset:
    """The dataset averaged by ``timestep`` integrations and ``freqstep`` channels (all data columns)."""
    columns = [str(v) for v in ds.data_vars if ds[v].dims == VIS_DIMS and v not in ("WEIGHT", "FLAG")]
    ts, fs = _starts(ds.sizes["time"], timestep), _starts(ds.sizes["frequency"], freqstep)
    data, weight, flag = average_arrays({c: ds[c].values for c in columns}, ds["WEIGHT"].values,
                                        ds["FLAG"].values.astype(bool), timestep, freqstep)
    tcount = np.diff(np.append(ts, ds.sizes["time"]))
    fcount = np.diff(np.append(fs, ds.sizes["frequency"]))
    time = np.add.reduceat(ds["time"].values, ts) / tcount
    freq = np.add.reduceat(ds["frequency"].values, fs) / fcount
    uvw = np.add.reduceat(ds["UVW"].values, ts, axis=0) / tcount[:, None, None]
    width = np.add.reduceat(ds["CHANNEL_WIDTH"].values, fs) if "CHANNEL_WIDTH" in ds else None
    out = ds.drop_dims(["time", "frequency"]).drop_vars(["time", "frequency"], errors="ignore")
    out = out.assign_coords(time=time, frequency=freq)
    for name, arr in data.items():
        out[name] = (VIS_DIMS, arr)
    out["WEIGHT"] = (VIS_DIMS, weight)
    out["FLAG"] = (VIS_DIMS, flag)
    out["UVW"] = (("time", "baseline", "uvw_label"), uvw)
    if width is not None:
        out["CHANNEL_WIDTH"] = (("frequency",), width)
    out.attrs = dict(ds.attrs)
    out.attrs["integration_time"] = float(ds.attrs.get("integration_time", 1.0)) * timestep
    return out
