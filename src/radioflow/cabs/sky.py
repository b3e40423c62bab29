"""Cabs: sky models and frequency windows."""
from __future__ import annotations

import math

import numpy as np

from ..science.skymodel import random_field, read_catalogue, write_catalogue
from ._util import cab_files, say


def make_sky(catalogue: str, ra: float, dec: float, radius: float = 3.0, flux_limit: float = 0.3,
             flux_max: float = 10.0, nsources: int = 30, slope: float = -1.6, ref_freq: float = 1e8,
             seed: int = 1) -> dict:
    """A GLEAM-like random field of point sources above ``flux_limit`` (Jy) written as a CSV catalogue."""
    sky = random_field(math.radians(ra), math.radians(dec), radius=math.radians(radius), nsources=nsources,
                       flux_min=flux_limit, flux_max=flux_max, slope=slope, ref_freq=ref_freq, seed=seed)
    with cab_files() as files:
        write_catalogue(sky, files.output(catalogue))
    say(f"Sky model: {len(sky)} sources above {flux_limit} Jy within {radius}° "
        f"(total {sky.flux.sum():.2f} Jy, brightest {sky.flux.max():.2f} Jy) -> {catalogue}")
    return {"catalogue": catalogue, "count": len(sky), "total_flux": float(sky.flux.sum())}


def frequency_windows(freq_min: float, freq_max: float, nfreqwin: int) -> dict:
    """Centre frequencies and width of ``nfreqwin`` windows spanning freq_min..freq_max (as the SDP workflow)."""
    freqs = np.linspace(freq_min, freq_max, nfreqwin) if nfreqwin > 1 else np.array([0.5 * (freq_min + freq_max)])
    width = float(freqs[1] - freqs[0]) if nfreqwin > 1 else float(max(freq_max - freq_min, 1e6))
    say(f"{nfreqwin} frequency windows {freqs[0] / 1e6:.2f}–{freqs[-1] / 1e6:.2f} MHz, width {width / 1e6:.3f} MHz")
    return {"windows": list(range(nfreqwin)), "frequencies": [float(f) for f in freqs], "channel_width": width,
            "centre": nfreqwin // 2}


def catalogue_flux(catalogue: str) -> dict:
    """Total and peak flux of a catalogue (for reports)."""
    with cab_files() as files:
        sky = read_catalogue(files.input(catalogue))
    return {"total_flux": float(sky.flux.sum()), "peak_flux": float(sky.flux.max()) if len(sky) else 0.0}
