"""Time and frequency averaging of a visibility dataset, with weights and flags as DP3's averager.

Per output sample: data = Σ w·V / Σ w over the unflagged inputs, weight = Σ w of those inputs,
flag = False. When every input is flagged the output is flagged, its data is the weighted mean
of all inputs and its weight the sum of all their weights (checked against DP3 6.6). UVW and TIME are averaged over the time bin, frequencies over
the channel bin; channel widths add. A last, shorter bin keeps the leftover samples (as DP3).
One parallel numba pass over the samples computes every output, summing in float64 (no Python
loop per sample, no temporaries of the input's size).
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numba
import numpy as np
import xarray as xr

from ..errors import UsageError
from ..vis.schema import VIS_DIMS


def _starts(n: int, step: int) -> np.ndarray:
    return np.arange(0, n, step)


@numba.njit(parallel=True, nogil=True, cache=True)
def _average_kernel(data, weight, flag, ts, tn, fs, fn, out, out_weight, out_flag):  # pragma: no cover
    """One data column averaged into ``out`` (plus the shared output weight and flag).

    Per output sample, in float64 over its bin: Σ w·V and Σ w over the unflagged inputs; only
    when those are all flagged (or weigh 0) a second pass sums over all of them (or takes the
    plain mean if every weight is 0). Output time bins are independent: parallel over them.
    """
    nb, nc = data.shape[1], data.shape[3]
    for tb in numba.prange(ts.size):
        t0, t1 = ts[tb], ts[tb] + tn[tb]
        for b in range(nb):
            for fb in range(fs.size):
                f0, f1 = fs[fb], fs[fb] + fn[fb]
                for c in range(nc):
                    good_w = 0.0
                    good_re = 0.0
                    good_im = 0.0
                    ngood = 0
                    for t in range(t0, t1):
                        for f in range(f0, f1):
                            if not flag[t, b, f, c]:
                                w = np.float64(weight[t, b, f, c])
                                v = data[t, b, f, c]
                                ngood += 1
                                good_w += w
                                good_re += w * v.real
                                good_im += w * v.imag
                    if good_w > 0:
                        out[tb, b, fb, c] = complex(good_re / good_w, good_im / good_w)
                        out_flag[tb, b, fb, c] = False
                        out_weight[tb, b, fb, c] = good_w
                        continue
                    flagged = ngood == 0
                    all_w = 0.0
                    all_v = 0.0 + 0.0j
                    sum_v = 0.0 + 0.0j
                    for t in range(t0, t1):
                        for f in range(f0, f1):
                            w = np.float64(weight[t, b, f, c])
                            v = np.complex128(data[t, b, f, c])
                            all_w += w
                            all_v += v * w
                            sum_v += v
                    if all_w > 0:
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


def _bin_sum(a: np.ndarray, step: int) -> np.ndarray:
    """Sums of ``a`` over consecutive bins of ``step`` along its first axis (a last, shorter bin
    keeps the leftover); a reshape-sum, ten times faster than ``np.add.reduceat``."""
    full = a.shape[0] // step * step
    out = a[:full].reshape(full // step, step, *a.shape[1:]).sum(axis=1)
    if full < a.shape[0]:
        out = np.concatenate([out, a[full:].sum(axis=0, keepdims=True)])
    return out


def _averaged_parts(ds: xr.Dataset, timestep: int, freqstep: int) -> tuple[dict, dict, dict]:
    """(data variables, coordinates, attributes) of the averaged dataset but its averaged samples."""
    variables = ds.variables
    ntime, nfreq = ds.sizes["time"], ds.sizes["frequency"]
    tcount = np.diff(np.append(_starts(ntime, timestep), ntime))
    fcount = np.diff(np.append(_starts(nfreq, freqstep), nfreq))
    binned = {"time", "frequency"}
    coords: dict[Hashable, Any] = {k: variables[k] for k in ds.coords if not set(variables[k].dims) & binned}
    coords["time"] = ("time", _bin_sum(variables["time"].values, timestep) / tcount)
    coords["frequency"] = ("frequency", _bin_sum(variables["frequency"].values, freqstep) / fcount)
    data_vars: dict[Hashable, Any] = {k: variables[k] for k in ds.data_vars if not set(variables[k].dims) & binned}
    data_vars["UVW"] = (("time", "baseline", "uvw_label"),
                        _bin_sum(variables["UVW"].values, timestep) / tcount[:, None, None])
    if "CHANNEL_WIDTH" in ds:
        data_vars["CHANNEL_WIDTH"] = (("frequency",), _bin_sum(variables["CHANNEL_WIDTH"].values, freqstep))
    attrs = dict(ds.attrs)
    attrs["integration_time"] = float(ds.attrs.get("integration_time", 1.0)) * timestep
    return data_vars, coords, attrs


def _averaged_names(ds: xr.Dataset) -> list[str]:
    """The variables the kernel averages: every data column, WEIGHT and FLAG."""
    variables = ds.variables
    return [str(v) for v in ds.data_vars if variables[v].dims == VIS_DIMS]


def averaged_template(ds: xr.Dataset, timestep: int = 1, freqstep: int = 1) -> xr.Dataset:
    """The averaged dataset without its averaged samples: coordinates, UVW, channel widths and
    attributes, with the data columns, WEIGHT and FLAG as zero-stride placeholders of the right
    shape and dtype (no memory). Enough for a writer to create the output while the averaging
    kernel runs (see :func:`radioflow.cabs.preprocess.average`)."""
    data_vars, coords, attrs = _averaged_parts(ds, timestep, freqstep)
    shape = (len(coords["time"][1]), ds.sizes["baseline"], len(coords["frequency"][1]), ds.sizes["polarization"])
    for name in _averaged_names(ds):
        dtype = bool if name == "FLAG" else ds.variables[name].dtype
        data_vars[name] = (VIS_DIMS, np.broadcast_to(np.zeros((), dtype), shape))
    return xr.Dataset(data_vars, coords, attrs)


def average_samples(ds: xr.Dataset, timestep: int = 1, freqstep: int = 1) -> dict[str, np.ndarray]:
    """The averaged data columns, WEIGHT and FLAG of ``ds`` (name -> array), from the kernel.

    The numba kernel releases the GIL, so this can run in a thread beside other work.
    """
    variables = ds.variables
    columns = [v for v in _averaged_names(ds) if v not in ("WEIGHT", "FLAG")]
    data, weight, flag = average_arrays({c: variables[c].values for c in columns}, variables["WEIGHT"].values,
                                        variables["FLAG"].values.astype(bool, copy=False), timestep, freqstep)
    return {**data, "WEIGHT": weight, "FLAG": flag}


def average_dataset(ds: xr.Dataset, timestep: int = 1, freqstep: int = 1) -> xr.Dataset:
    """The dataset averaged by ``timestep`` integrations and ``freqstep`` channels (all data columns)."""
    data_vars, coords, attrs = _averaged_parts(ds, timestep, freqstep)
    data_vars.update({name: (VIS_DIMS, arr) for name, arr in average_samples(ds, timestep, freqstep).items()})
    return xr.Dataset(data_vars, coords, attrs)
