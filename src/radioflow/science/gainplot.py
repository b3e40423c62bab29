"""PNG plot of gain solutions: phase (deg) and amplitude per antenna vs time (and frequency)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import UsageError
from ..processes import remove_stale_siblings


def plot_gains(solution_ds: xr.Dataset, png_path: str | os.PathLike) -> Path:
    """Plot ``GAIN`` of a solutions dataset (see ``calibrate.solutions_to_dataset``) to a PNG.

    One column per receptor; rows are phase and amplitude vs time at the middle solution
    channel, plus phase and amplitude vs frequency at the middle solution time when there are
    several channels. One line per antenna; flagged solutions are left out. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if "GAIN" not in solution_ds:
        raise UsageError("plot_gains needs a solutions dataset with a GAIN variable (time, antenna, frequency, polarization).")
    dims = ("time", "antenna", "frequency", "polarization")
    gain = solution_ds["GAIN"].transpose(*dims).values.astype(np.complex128)
    if "FLAG" in solution_ds:
        gain = np.where(solution_ds["FLAG"].transpose(*dims).values, np.nan, gain)
    nst, nant, nsf, npol = gain.shape
    times = solution_ds["time"].values.astype(np.float64)
    t_axis = (times - times[0]) / 60.0 if nst else times
    freqs = solution_ds["frequency"].values.astype(np.float64) / 1e6
    pols = [str(p) for p in solution_ds["polarization"].values]
    names = [str(n) for n in solution_ds["antenna_name"].values] if "antenna_name" in solution_ds.coords else [
        str(i) for i in range(nant)
    ]
    rows = 4 if nsf > 1 else 2
    fig = Figure(figsize=(5.5 * npol, 2.6 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, npol, squeeze=False, sharex="row")
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, max(nant, 1)))
    mid_f, mid_t = nsf // 2, nst // 2
    for k in range(npol):
        panels = [(t_axis, gain[:, :, mid_f, k], "time (min)", f"{freqs[mid_f]:.3f} MHz")]
        if nsf > 1:
            panels.append((freqs, gain[mid_t, :, :, k].T, "frequency (MHz)", f"t = {t_axis[mid_t]:.1f} min"))
        for j, (x, g, xlabel, where) in enumerate(panels):
            ax_ph, ax_amp = axes[2 * j, k], axes[2 * j + 1, k]
            for a in range(nant):
                style = dict(color=colours[a], lw=0.8, marker=".", ms=2, label=names[a] if nant <= 16 else None)
                ax_ph.plot(x, np.degrees(np.angle(g[:, a])), **style)
                ax_amp.plot(x, np.abs(g[:, a]), **style)
            ax_ph.set_ylabel("phase (deg)")
            ax_amp.set_ylabel("amplitude")
            ax_amp.set_xlabel(xlabel)
            ax_ph.set_title(f"{pols[k]} gains, {where}", fontsize=9)
            ax_ph.set_ylim(-185, 185)
    if nant <= 16:
        axes[0, npol - 1].legend(fontsize=6, ncol=2, loc="upper right")
    mode = solution_ds.attrs.get("mode", "")
    fig.suptitle(f"gain solutions ({mode}, {nant} antennas)", fontsize=10)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(png_path)                 # temporaries of a killed earlier writer
    tmp = png_path.with_name(f".{png_path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png")
        os.replace(tmp, png_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return png_path
