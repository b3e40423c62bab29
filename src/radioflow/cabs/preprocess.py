"""Cabs of the DP3-like pre-processing chain without binaries: flag, average, subtract, apply.

Each works on any radioflow dataset URL: a local MS is updated in place (new columns written
into it); a Zarr dataset (local or S3) is never rewritten, new columns go into a delta overlay
(``delta``, default ``<dataset>-delta.zarr``) as :func:`radioflow.vis.io.write_columns` does.
Averaging writes a new dataset (``msout``) in the format of its suffix, local or S3.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import UsageError
from ..science.averaging import average_dataset, average_samples, averaged_template
from ..science.flagging import flag_rfi
from ..science.imaging import PARALLEL_HANDS, parallel_hands, uvw_rows
from ..science.predict import predict_rows
from ..science.skymodel import read_catalogue
from ..vis.io import format_of, write_columns, write_dataset
from ..vis.location import as_location
from ..vis.schema import VIS_DIMS, column_variable
from ._util import load_dataset, say


def _column(ds, column: str, url: str) -> np.ndarray:
    var = column_variable(column)
    if var not in ds:
        have = ", ".join(v for v in ds.data_vars if ds[v].dims == VIS_DIMS and v not in ("FLAG", "WEIGHT"))
        raise UsageError(f"Dataset {url} has no column {column} (parameter 'column'); it has {have}.")
    return np.asarray(ds[var].values)


def flag(ms: str, column: str = "DATA", threshold: float = 6.0, iterations: int = 3, max_window: int = 64,
         delta: str | None = None) -> dict:
    """Flag RFI in ``column`` with the vectorised SumThreshold flagger; FLAG gets the union."""
    ds = load_dataset(ms, columns=[column.upper()], extras=("FLAG",))
    vis = _column(ds, column, ms)
    before = np.asarray(ds["FLAG"].values, bool)
    flags = flag_rfi(vis, before, threshold=threshold, iterations=iterations, max_window=max_window)
    dataset = write_columns(ms, {"FLAG": flags}, delta=delta)
    frac, new = float(flags.mean()), float((flags & ~before).mean())
    say(f"Flagged {ms}: {100 * new:.2f} % newly flagged, {100 * frac:.2f} % flagged in all")
    return {"dataset": dataset, "flagged_fraction": frac, "new_fraction": new}


def _local_ms(url: str) -> str | None:
    """The path of ``url`` if it is a local Measurement Set (a casacore table), else None."""
    loc = as_location(url)
    return loc.path if loc.is_local and os.path.isfile(os.path.join(loc.path, "table.dat")) else None


def _average_into_ms(ds, path: str, timestep: int, freqstep: int, subtables_from: str | None):
    """Average ``ds`` into the local MS ``path``: the numba kernel runs in a thread (it releases
    the GIL) while this one creates the output table and copies the subtables."""
    from concurrent.futures import ThreadPoolExecutor

    from ..vis.ms import MSWriter

    template = averaged_template(ds, timestep, freqstep)
    with ThreadPoolExecutor(1) as pool:
        samples = pool.submit(average_samples, ds, timestep, freqstep)
        with MSWriter(path, template, overwrite=True, subtables_from=subtables_from) as writer:
            out = template.assign({name: (VIS_DIMS, arr) for name, arr in samples.result().items()})
            writer.write_dataset(out)
    return out


def average(ms: str, msout: str, timestep: int = 1, freqstep: int = 1) -> dict:
    """Average ``ms`` by ``timestep`` integrations and ``freqstep`` channels into ``msout`` (DP3's rules)."""
    if timestep < 1 or freqstep < 1:
        raise UsageError(f"rf-average: timestep and freqstep must be >= 1 (got {timestep}, {freqstep}).")
    ds = load_dataset(ms, None).load()
    target = as_location(msout)
    if target.is_local and format_of(target) == "ms":
        out = _average_into_ms(ds, target.path, timestep, freqstep, _local_ms(ms))
        url = target.path
    else:
        out = average_dataset(ds, timestep=timestep, freqstep=freqstep)
        url = write_dataset(out, msout, overwrite=True)
    say(f"Averaged {ms} by {timestep} × {freqstep} (time × channel): {ds.sizes['time']}×{ds.sizes['frequency']} "
        f"-> {out.sizes['time']}×{out.sizes['frequency']} -> {url}")
    return {"msout": url, "ntime": int(out.sizes["time"]), "nchan": int(out.sizes["frequency"])}


def _gains(ds, solutions: str, solset: str = "sol000", direction: str | None = None):
    """Gains of ``solutions`` for ``ds``: ``(gains, time_interval, freq_interval, vis flags)``.

    Radioflow solutions (Zarr, from rf-gaincal) keep their intervals; a DP3 h5parm (``.h5``) is
    sampled at the visibilities' times and channels (nearest solution).
    """
    from ..science.calibrate import gain_flags_to_vis, solutions_from_dataset
    from ..science.corrupt import receptor_index

    a1, a2 = ds["baseline_antenna1"].values, ds["baseline_antenna2"].values
    ntime, nchan = ds.sizes["time"], ds.sizes["frequency"]
    ncorr = ds.sizes["polarization"]
    if solutions.rstrip("/").lower().endswith((".h5", ".h5parm", ".hdf5")):
        from ..science.h5parm import read_h5parm_gains

        gains, gflags = read_h5parm_gains(solutions, ds["time"].values, ds["frequency"].values,
                                          [str(a) for a in ds["antenna_name"].values], solset, direction)
        ip, iq = receptor_index(ncorr, gflags.shape[3])
        return gains, 1, 1, gflags[:, a1][..., ip] | gflags[:, a2][..., iq]
    import xarray as xr

    with xr.open_zarr(solutions, consolidated=False, chunks=None) as sds:
        sol = solutions_from_dataset(sds.load())
    if not sol.flags.any():  # nothing to expand: all-False flags, never gathered per visibility
        return sol.gains, sol.time_interval, sol.freq_interval, np.zeros((ntime, a1.size, nchan, ncorr), bool)
    return sol.gains, sol.time_interval, sol.freq_interval, gain_flags_to_vis(sol, a1, a2, ntime, nchan, ncorr)


def subtract(ms: str, sky: str, column: str = "DATA", outcolumn: str = "DATA", solutions: str | None = None,
             delta: str | None = None) -> dict:
    """``outcolumn = column − model``, the model predicted from the catalogue ``sky`` (direct Fourier sum).

    With ``solutions`` (Zarr or h5parm) the model is first corrupted by those gains, so that a
    source is subtracted from data that are not yet calibrated (DP3's predict with applycal).
    """
    ds = load_dataset(ms, columns=sorted({column.upper(), "DATA"}), extras=("UVW",))
    vis = _column(ds, column, ms)
    model = read_catalogue(sky)
    ra, dec = ds.attrs["phase_center"]
    vis_i = predict_rows(model, uvw_rows(ds), ds["frequency"].values, ra, dec)
    vis_i = vis_i.reshape(ds.sizes["time"], ds.sizes["baseline"], -1)
    if solutions:
        from ..science.calibrate import corrupt

        gains, ti, fi, _ = _gains(ds, solutions)
        pred = corrupt(parallel_hands(vis_i, ds["polarization"].values), gains, ds["baseline_antenna1"].values,
                       ds["baseline_antenna2"].values, ti, fi)
        out = np.subtract(vis, pred, out=np.empty(vis.shape, vis.dtype), casting="unsafe")
    else:  # the model is zero in the cross hands: subtract it from the parallel hands only
        out = vis.copy()
        hands = [i for i, p in enumerate(ds["polarization"].values) if str(p) in PARALLEL_HANDS]
        if hands:
            model_i = vis_i.astype(np.complex64)
            for i in hands:
                np.subtract(out[..., i], model_i, out=out[..., i], casting="unsafe")
    dataset = write_columns(ms, {outcolumn.upper(): out}, delta=delta)
    say(f"Subtracted {len(model)} source(s) of {sky} from {column} of {ms} into {outcolumn}")
    return {"dataset": dataset}


def apply(ms: str, solutions: str, column: str = "DATA", outcolumn: str = "CORRECTED_DATA",
          solset: str = "sol000", direction: str | None = None, delta: str | None = None) -> dict:
    """``outcolumn`` = ``column`` corrected by gains: radioflow solutions (Zarr) or a DP3 h5parm (.h5)."""
    from ..science.calibrate import correct

    ds = load_dataset(ms, columns=[column.upper()], extras=())
    vis = _column(ds, column, ms)
    gains, ti, fi, bad = _gains(ds, solutions, solset, direction)
    out = correct(vis, gains, ds["baseline_antenna1"].values, ds["baseline_antenna2"].values, ti, fi)
    columns = {outcolumn.upper(): out.astype(vis.dtype, copy=False)}
    if bad.any():
        flags = ds["FLAG"] if "FLAG" in ds else load_dataset(ms, columns=[], extras=("FLAG",))["FLAG"]
        columns["FLAG"] = np.asarray(flags.values, bool) | bad
    dataset = write_columns(ms, columns, delta=delta)
    say(f"Applied {solutions} to {column} of {ms} into {outcolumn}" + (f" ({100 * bad.mean():.2f} % flagged by solutions)" if bad.any() else ""))
    return {"dataset": dataset}
