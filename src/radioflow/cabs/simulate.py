"""Cab: simulate one frequency window of an observation, with antenna phase errors."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..science.calibrate import GainSolution, solutions_to_dataset
from ..science.corrupt import corrupt_dataset
from ..science.observation import make_observation
from ..science.simulate import simulate
from ..science.skymodel import read_catalogue
from ..science.telescopes import load_layout
from ..vis.io import upload_ms
from ..vis.location import as_location
from ..vis.ms import write_ms
from ._util import cab_files, say, write_zarr_atomic


def simulate_window(ms: str, sky: str, frequency: float, channel_width: float, window: int = 0,
                    telescope: str = "ska-low-model", rmax: float | None = None, ra: float = 0.0,
                    dec: float = -30.0, ntimes: int = 5, ha_start: float = -30.0, ha_end: float = 30.0,
                    phase_error: float = 0.0, amplitude_error: float = 0.0, noise_sigma: float = 0.0,
                    seed: int = 1, true_gains: str | None = None) -> dict:
    """Simulate window ``window`` (one channel) to ``ms`` (local, or published on S3); corrupt DATA
    with random antenna gains."""
    layout = load_layout(telescope)
    if rmax:
        layout = layout.select(rmax=rmax)
    obs = make_observation(ra=math.radians(ra), dec=math.radians(dec), layout=layout, freq_min=frequency,
                           freq_max=frequency, nchan=1, ha_range=(math.radians(ha_start), math.radians(ha_end)),
                           ntimes=ntimes)
    obs = dataclasses.replace(obs, channel_width=np.array([channel_width]))
    with cab_files() as files:
        model = read_catalogue(files.input(sky))
    ds = simulate(layout, obs, model, noise_sigma=noise_sigma or None, seed=seed * 1000 + window,
                  telescope_name=layout.telescope or ("SKA-Low" if "low" in layout.name.lower() else layout.name))
    if phase_error > 0 or amplitude_error > 0:
        ds, gains = corrupt_dataset(ds, phase_rms=phase_error, amp_rms=amplitude_error, seed=seed * 7919 + window)
    else:  # an error-free observation: the true gains are unity, and calibration is checked against them
        gains = np.ones((ds.sizes["time"], ds.sizes["antenna"], ds.sizes["frequency"], 1), np.complex128)
    if true_gains:
        sol = GainSolution(gains=gains, flags=np.zeros(gains.shape, bool),
                           iterations=np.zeros((gains.shape[0], 1, 1), np.int64), converged=1.0, chi2=0.0,
                           mode="phase", refant=0, time_interval=1, freq_interval=1)
        write_zarr_atomic(solutions_to_dataset(sol, ds["time"].values, ds["frequency"].values,
                                               ds["antenna_name"].values), true_gains)
    target = as_location(ms)
    if target.is_local:
        write_ms(ds, ms, overwrite=True)
    else:
        upload_ms(lambda path: write_ms(ds, path, overwrite=True), target, overwrite=True)
    say(f"Simulation pipeline: window {window} at {frequency / 1e6:.3f} MHz, {layout.n} stations, "
        f"{ds.sizes['time']} times, {len(model)} sources, phase errors {phase_error} rad rms -> {ms}")
    return {"ms": ms, "nvis": int(ds["VISIBILITY"].size)}
