"""Time and frequency averaging of a visibility dataset, with weights and flags as DP3's averager.

Per output sample: data = Σ w·V / Σ w over the unflagged inputs, weight = Σ w of those inputs,
flag = False. When every input is flagged the output is flagged, its data is the weighted mean
of all inputs and its weight the sum of all their weights (checked against DP3 6.6). UVW and TIME are averaged over the time bin, frequencies over
the channel bin; channel widths add. A last, shorter bin keeps the leftover samples (as DP3).
All sums are ``np.add.reduceat`` over the time and frequency axes: no Python loop per sample.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import UsageError
from ..vis.schema import VIS_DIMS


def _starts(n: int, step: int) -> np.ndarray:
    return np.arange(0, n, step)


def _bin_sum(a: np.ndarray, tstarts: np.ndarray, fstarts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(np.add.reduceat(a, tstarts, axis=0), fstarts, axis=2)


def average_arrays(vis: dict[str, np.ndarray], weight: np.ndarray, flag: np.ndarray, timestep: int,
                   freqstep: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Average data columns ``vis`` (name -> 4-D complex) sharing ``weight`` and ``flag``.

    Returns ``(averaged columns, weight, flag)``.
    """
    if timestep < 1 or freqstep < 1:
        raise UsageError(f"Averaging steps must be >= 1 (got timestep={timestep}, freqstep={freqstep}).")
    ts, fs = _starts(flag.shape[0], timestep), _starts(flag.shape[2], freqstep)
    w = np.asarray(weight, np.float64)
    good_w = np.where(flag, 0.0, w)
    wsum = _bin_sum(good_w, ts, fs)
    wall = _bin_sum(w, ts, fs)
    nall = _bin_sum(np.ones_like(w), ts, fs)
    out_flag = _bin_sum((~flag).astype(np.int32), ts, fs) == 0
    out: dict[str, np.ndarray] = {}
    for name, data in vis.items():
        data = np.asarray(data)
        num = _bin_sum(np.where(flag, 0, data * good_w), ts, fs)
        num_all = _bin_sum(data * w, ts, fs)
        plain = _bin_sum(data.astype(np.complex128), ts, fs) / nall
        with np.errstate(invalid="ignore", divide="ignore"):
            good_mean = num / wsum
            all_mean = np.where(wall > 0, num_all / np.where(wall > 0, wall, 1), plain)
        avg = np.where(out_flag | (wsum <= 0), all_mean, good_mean)
        out[name] = avg.astype(data.dtype, copy=False)
    out_weight = np.where(out_flag, wall, wsum).astype(np.asarray(weight).dtype, copy=False)
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
