"""Cabs: predict model visibilities from a model image, solve and apply antenna gains."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..science.calibrate import calibrate_dataset, solutions_to_dataset
from ..science.fits import read_fits_image
from ..science.gainplot import plot_gains
from ..science.imaging import image_to_vis, parallel_hands, uvw_rows
from ..vis.io import write_columns
from ..vis.location import as_location
from ._util import cab_files, gridding_threads, load_dataset, say, write_zarr_atomic


def predict_model(ms: str, model: str, nthreads: int = 1, epsilon: float = 1e-4, delta: str | None = None) -> dict:
    """MODEL_DATA = visibilities of a model image (Jy/pixel, Stokes I into the parallel hands).

    Written like :func:`radioflow.vis.io.write_columns`; returns ``dataset``, the URL that has it.
    """
    with cab_files() as files:
        image, header = read_fits_image(files.input(model))
    ds = load_dataset(ms, columns=[])
    ny, nx = image.shape
    cell_x, cell_y = np.radians(-header["CDELT1"]), np.radians(header["CDELT2"])
    vis_i = image_to_vis(image, uvw_rows(ds), ds["frequency"].values, nx, ny, cell_x, cell_y, nthreads=gridding_threads(nthreads),
                         epsilon=epsilon)
    model_vis = parallel_hands(vis_i.reshape(ds.sizes["time"], ds.sizes["baseline"], -1), ds["polarization"].values)
    dataset = write_columns(ms, {"MODEL_DATA": model_vis}, delta=delta)
    say(f"Predicted MODEL_DATA of {ms} from {model} ({np.count_nonzero(image)} model pixels, {image.sum():.4g} Jy)")
    return {"dataset": dataset}


def _phase_error(solved: np.ndarray, true: np.ndarray, refant: int) -> float:
    """RMS phase difference (rad) after removing the reference antenna's phase from both."""
    s = solved * np.exp(-1j * np.angle(solved[:, refant:refant + 1]))
    t = true * np.exp(-1j * np.angle(true[:, refant:refant + 1]))
    return float(np.sqrt(np.mean(np.angle(s * np.conj(t)) ** 2)))


def gaincal(ms: str, solutions: str, mode: str = "phase", time_interval: int = 1,
            freq_interval: int | None = None, refant: int = 0, tol: float = 1e-8, maxiter: int = 200,
            plot: str | None = None, true_gains: str | None = None, label: str = "",
            delta: str | None = None) -> dict:
    """Solve DATA against MODEL_DATA, write CORRECTED_DATA, save solutions (Zarr) and a PNG plot.

    ``ms`` is any dataset URL (a local MS is updated in place; Zarr gets a delta overlay, see
    :func:`radioflow.vis.io.write_columns`); ``calibrated`` is the URL with CORRECTED_DATA.
    """
    ds = load_dataset(ms, columns=["DATA", "MODEL_DATA"])
    sol, out = calibrate_dataset(ds, "MODEL_DATA", time_interval=time_interval, freq_interval=freq_interval,
                                 mode=mode, refant=refant, tol=tol, maxiter=maxiter)
    columns = {"CORRECTED_DATA": out["CORRECTED_DATA"].values}
    if sol.flags.any():
        columns["FLAG"] = out["FLAG"].values
    calibrated = write_columns(ms, columns, delta=delta)
    sol_ds = solutions_to_dataset(sol, ds["time"].values, ds["frequency"].values, ds["antenna_name"].values)
    write_zarr_atomic(sol_ds, solutions)
    if plot:
        with cab_files() as files:
            plot_gains(sol_ds, files.output(plot))
    result = {"solutions": solutions, "calibrated": calibrated, "chi2": float(sol.chi2),
              "converged": float(sol.converged), "phase_error": -1.0}
    msg = (f"Calibration{' ' + label if label else ''}: {mode} solutions, {sol.gains.shape[0]} intervals, "
           f"converged {100 * sol.converged:.0f} %")
    if true_gains:
        with xr.open_zarr(as_location(true_gains).zarr_store(read_only=True), consolidated=False) as truth:
            tg = truth["GAIN"].values
        nant = sol.gains.shape[1]
        tg = tg[:: sol.time_interval][:, :, :: sol.freq_interval]
        err = _phase_error(sol.gains[..., 0].transpose(0, 2, 1).reshape(-1, nant),
                           tg[..., 0].transpose(0, 2, 1).reshape(-1, nant), refant)
        result["phase_error"] = err
        msg += f", phase error vs truth {err:.4f} rad rms"
    say(msg)
    return result
