"""IVOA ObsCore 1.1 fields computed from the data itself: MS tables or a FITS image's WCS.

Units follow ObsCore: angles in degrees (``s_resolution``, ``s_pixel_scale`` in arcsec),
times in MJD (UTC) and seconds, wavelengths in metres, ``access_estsize`` in kilobytes.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UsageError

SPEED_OF_LIGHT = 299_792_458.0
SECONDS_PER_DAY = 86_400.0
#: casacore Stokes enumeration -> name (CORR_TYPE of the POLARIZATION table, FITS STOKES axis).
STOKES = {1: "I", 2: "Q", 3: "U", 4: "V", 5: "RR", 6: "RL", 7: "LR", 8: "LL",
          9: "XX", 10: "XY", 11: "YX", 12: "YY"}
_FITS_STOKES = {1: "I", 2: "Q", 3: "U", 4: "V", -1: "RR", -2: "LL", -3: "RL", -4: "LR",
                -5: "XX", -6: "YY", -7: "XY", -8: "YX"}
_ROWS_PER_BLOCK = 1 << 20


@dataclass
class MSSummary:
    """What ObsCore needs from a Measurement Set."""

    ra: float              # deg
    dec: float             # deg
    field_name: str
    telescope: str
    t_min: float           # MJD, start of the first integration
    t_max: float           # MJD, end of the last integration
    t_exptime: float       # s, number of integrations × interval
    t_resolution: float    # s, integration time
    t_xel: int
    freq_min: float        # Hz, lower edge of the band
    freq_max: float        # Hz, upper edge
    channel_width: float   # Hz
    nchan: int
    pol_states: list[str]
    max_baseline: float    # m, longest projected baseline
    dish_diameter: float   # m, largest dish


def ms_summary(ms: str | os.PathLike[str]) -> MSSummary:
    """Read the MS tables (main table in blocks: TIME, INTERVAL, UVW) into an :class:`MSSummary`."""
    from casacore.tables import table

    from ...vis.ms_subtables import subtable_name

    path = str(ms)
    if not Path(path, "table.dat").is_file():
        raise UsageError(f"{path} is not a Measurement Set (no table.dat).")

    def sub(name: str) -> Any:
        return table(subtable_name(path, name), ack=False)

    with table(path, ack=False) as main:
        nrow = main.nrows()
        if nrow == 0:
            raise UsageError(f"Measurement Set {path} has no rows.")
        tmin, tmax, bmax, exposure = math.inf, -math.inf, 0.0, 0.0
        times: set[float] = set()
        for start in range(0, nrow, _ROWS_PER_BLOCK):
            n = min(_ROWS_PER_BLOCK, nrow - start)
            t = main.getcol("TIME", start, n)
            dt = main.getcol("INTERVAL", start, n)
            uvw = main.getcol("UVW", start, n)
            tmin, tmax = min(tmin, float(np.min(t - dt / 2))), max(tmax, float(np.max(t + dt / 2)))
            bmax = max(bmax, float(np.sqrt(np.max(np.sum(uvw**2, axis=1)))))
            times.update(np.unique(t).tolist())
            exposure = float(np.median(dt))
    with sub("SPECTRAL_WINDOW") as spw:
        freq = np.concatenate([np.atleast_1d(spw.getcell("CHAN_FREQ", i)) for i in range(spw.nrows())])
        width = np.concatenate([np.abs(np.atleast_1d(spw.getcell("CHAN_WIDTH", i))) for i in range(spw.nrows())])
    with sub("FIELD") as field:
        ra, dec = np.degrees(field.getcell("PHASE_DIR", 0)[0])
        field_name = str(field.getcell("NAME", 0))
    with sub("POLARIZATION") as pol:
        pols = [STOKES.get(int(c), str(c)) for c in pol.getcell("CORR_TYPE", 0)]
    with sub("OBSERVATION") as obs:
        telescope = str(obs.getcell("TELESCOPE_NAME", 0)) if obs.nrows() else "unknown"
    with sub("ANTENNA") as ant:
        dish = float(np.max(ant.getcol("DISH_DIAMETER")))
    return MSSummary(ra=float(ra) % 360.0, dec=float(dec), field_name=field_name, telescope=telescope,
                     t_min=tmin / SECONDS_PER_DAY, t_max=tmax / SECONDS_PER_DAY, t_exptime=len(times) * exposure,
                     t_resolution=exposure, t_xel=len(times), freq_min=float(np.min(freq - width / 2)),
                     freq_max=float(np.max(freq + width / 2)), channel_width=float(np.median(width)),
                     nchan=int(freq.size), pol_states=pols, max_baseline=bmax, dish_diameter=dish)


def facility_of(telescope: str) -> str:
    """The observatory operating a telescope (ObsCore ``facility_name``)."""
    t = telescope.lower()
    if t.startswith("ska"):
        return "SKAO"
    if "meerkat" in t:
        return "SARAO"
    return telescope


def size_kb(path: str | os.PathLike[str]) -> int:
    """Size on disk in kB (ObsCore ``access_estsize``): a file, or all files under a directory."""
    p = Path(path)
    if p.is_dir():
        total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    else:
        total = p.stat().st_size
    return int(math.ceil(total / 1024))


def visibility_obscore(ms: str | os.PathLike[str]) -> dict[str, Any]:
    """ObsCore fields of a visibility product (``dataproduct_type`` ``visibility``, calib_level 1)."""
    s = ms_summary(ms)
    centre = 0.5 * (s.freq_min + s.freq_max)
    fov = math.degrees(1.25 * SPEED_OF_LIGHT / centre / s.dish_diameter)
    resolution = math.degrees(SPEED_OF_LIGHT / s.freq_max / s.max_baseline) * 3600 if s.max_baseline > 0 else None
    return {
        "dataproduct_type": "visibility", "calib_level": 1, "target_name": s.field_name,
        "s_ra": s.ra, "s_dec": s.dec, "s_fov": fov,
        "s_region": f"CIRCLE ICRS {s.ra:.8f} {s.dec:.8f} {fov / 2:.8f}",
        "s_resolution": resolution, "s_xel1": None, "s_xel2": None, "s_pixel_scale": None,
        "t_min": s.t_min, "t_max": s.t_max, "t_exptime": s.t_exptime, "t_resolution": s.t_resolution,
        "t_xel": s.t_xel,
        "em_min": SPEED_OF_LIGHT / s.freq_max, "em_max": SPEED_OF_LIGHT / s.freq_min,
        "em_res_power": centre / s.channel_width, "em_xel": s.nchan, "em_ucd": "em.freq",
        "o_ucd": "stat.fourier;pos.eq", "pol_states": "/" + "/".join(s.pol_states) + "/",
        "pol_xel": len(s.pol_states),
        "facility_name": facility_of(s.telescope), "instrument_name": s.telescope,
        "access_format": "application/x-casa-ms", "access_estsize": size_kb(ms),
    }


def image_obscore(fits_path: str | os.PathLike[str], calib_level: int = 3) -> dict[str, Any]:
    """ObsCore fields of a FITS image from its header and WCS (position, frequency, Stokes, times)."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    with fits.open(fits_path) as hdul:
        hdr = hdul[0].header
    with warnings.catch_warnings():      # astropy's notes on keywords it derives (DATE-BEG from MJD-BEG)
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(hdr)
    if not wcs.has_celestial:
        raise UsageError(f"{fits_path}: no celestial WCS in the FITS header.")
    cel = wcs.celestial
    nx, ny = int(hdr["NAXIS1"]), int(hdr["NAXIS2"])
    centre = cel.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
    corners = np.array(cel.pixel_to_world_values(np.array([-0.5, nx - 0.5, nx - 0.5, -0.5]),
                                                 np.array([-0.5, -0.5, ny - 0.5, ny - 0.5]))).T
    scale_x, scale_y = (abs(float(d)) for d in proj_plane_pixel_scales(cel))   # deg
    lo = hi = None
    nchan = 1
    if wcs.has_spectral:
        spec = wcs.sub(["spectral"])
        nchan = int(hdr.get(f"NAXIS{wcs.wcs.spec + 1}", 1))
        half = abs(float(spec.wcs.cdelt[0])) / 2
        f = np.array(spec.pixel_to_world_values(np.arange(nchan)), dtype=float).ravel()
        lo, hi = float(f.min() - half), float(f.max() + half)
    if lo is None or hi is None or lo <= 0:
        raise UsageError(f"{fits_path}: no frequency axis with a positive frequency in the FITS header.")
    pols = ["I"]
    for i in range(1, int(hdr["NAXIS"]) + 1):
        if str(hdr.get(f"CTYPE{i}", "")).upper() == "STOKES":
            n = int(hdr[f"NAXIS{i}"])
            vals = hdr.get(f"CRVAL{i}", 1) + (np.arange(n) + 1 - hdr.get(f"CRPIX{i}", 1)) * hdr.get(f"CDELT{i}", 1)
            pols = [_FITS_STOKES.get(int(round(v)), str(v)) for v in vals]
    t_min, t_max = hdr.get("MJD-BEG"), hdr.get("MJD-END")
    telescope = str(hdr.get("TELESCOP", "unknown"))
    return {
        "dataproduct_type": "image", "calib_level": calib_level, "target_name": str(hdr.get("OBJECT", "")),
        "s_ra": float(centre[0]) % 360.0, "s_dec": float(centre[1]),
        "s_fov": max(nx * scale_x, ny * scale_y),
        "s_region": "POLYGON ICRS " + " ".join(f"{ra % 360.0:.8f} {dec:.8f}" for ra, dec in corners),
        "s_resolution": float(hdr["BMAJ"]) * 3600 if "BMAJ" in hdr else None,
        "s_xel1": nx, "s_xel2": ny, "s_pixel_scale": scale_y * 3600,
        "t_min": float(t_min) if t_min is not None else None, "t_max": float(t_max) if t_max is not None else None,
        "t_exptime": float(hdr["XPOSURE"]) if "XPOSURE" in hdr else None,
        "t_resolution": float(hdr["TELAPSE"]) if "TELAPSE" in hdr else None, "t_xel": 1,
        "em_min": SPEED_OF_LIGHT / hi, "em_max": SPEED_OF_LIGHT / lo,
        "em_res_power": 0.5 * (lo + hi) / (hi - lo), "em_xel": nchan, "em_ucd": "em.freq",
        "o_ucd": "phot.flux.density;phys.polarization.stokes", "pol_states": "/" + "/".join(pols) + "/",
        "pol_xel": len(pols), "facility_name": facility_of(telescope),
        "instrument_name": str(hdr.get("INSTRUME", telescope)),
        "access_format": "image/fits", "access_estsize": size_kb(fits_path),
    }
