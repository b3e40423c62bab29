"""Time and frequency averaging of a visibility dataset, with weights and flags as DP3's averager.

Per output sample: data = Σ w·V / Σ w over the unflagged inputs, weight = Σ w of those inputs,
flag = False. When every input is flagged the output is flagged, its data is the weighted mean
of all inputs and its weight the sum of all their weights (checked against DP3 6.6). UVW and TIME are averaged over the time bin, frequencies over
the channel bin; channel widths add. A last, shorter bin keeps the leftover samples (as DP3).
One parallel numba pass over the samples computes every output, summing in float64 (no Python
loop per sample, no temporaries of the input's size).
"""
from __future__ import annotations

import numba
import numpy as np
import xarray as xr

from ..errors import UsageError
from ..vis.schema import VIS_DIMS


def _starts(n: int, step: int) -> np.ndarray:
    return np.arange(0, n, step)


@numba.njit(parallel=True, cache=True)
def _average_kernel(data, weight, flag, ts, tn, fs, fn, out, out_weight, out_flag):  # pragma: no cover
    """One data column averaged into ``out`` (plus the shared output weight and flag).

    Per output sample, in float64 over its bin: Σ w·V and Σ w over the unflagged inputs; when
    all are flagged, Σ w·V and Σ w over all (or the plain mean if every weight is 0). Output
    time bins are independent: parallel over them.
    """
    nb, nc = data.shape[1], data.shape[3]
    for tb in numba.prange(ts.size):
        for b in range(nb):
            for fb in range(fs.size):
                for c in range(nc):
                    good_w = 0.0
                    all_w = 0.0
                    good_v = 0.0 + 0.0j
                    all_v = 0.0 + 0.0j
                    sum_v = 0.0 + 0.0j
                    ngood = 0
                    for t in range(ts[tb], ts[tb] + tn[tb]):
                        for f in range(fs[fb], fs[fb] + fn[fb]):
                            w = np.float64(weight[t, b, f, c])
                            v = np.complex128(data[t, b, f, c])
                            all_w += w
                            all_v += v * w
                            sum_v += v
                            if not flag[t, b, f, c]:
                                ngood += 1
                                good_w += w
                                good_v += v * w
                    flagged = ngood == 0
                    if not flagged and good_w > 0:
                        out[tb, b, fb, c] = good_v / good_w
                    elif all_w > 0:
                        out[tb, b, fb, c] = all_v / all_w
                    else:
                        out[tb, b, fb, c] = sum_v / (tn[tb] * fn[fb])
                    out_flag[tb, b, fb, c] = flagged
                    out_weight[tb, b, fb, c] = all_w if flagged else good_w


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
                                        ds["FLAG"].values.astype(bool, copy=False), timestep, freqstep)
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
