"""Cabs of the SRCNet AA* workflow: simulate, dirty and cleaned MFS images, data products with ``.meta``.

The workflow follows the SRCNet SKA-Mid AA* job: an observation of ``obs_length_hours`` in
``num_time_stamps`` dumps from ``start``, channels ``start_freq + k·freq_inc`` below
``end_freq``, a sky seen through a Gaussian primary beam of FWHM ``1.25 λ/D`` at the band
centre (D = the largest dish), MFS images over the whole band, and for every product the
``<file>.meta`` the datalake ingestor reads (:mod:`radioflow.ops.lake.meta`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..science.observation import make_observation
from ..science.simulate import simulate
from ..science.skymodel import SkyModel, random_field, read_catalogue, write_catalogue
from ..science.telescopes import Layout, load_layout
from ..vis.ms import write_ms
from ._util import gridding_threads, say

SPEED_OF_LIGHT = 299_792_458.0
#: survey catalogues the original job downloads; radioflow ships none of them.
SURVEY_SKIES = ("MIGHTEE_L1", "GLEAM", "MALS_DR1V3")
#: ObsCore calib_level per product: raw simulated visibilities, a dirty image, a deconvolved one.
CALIB_LEVEL = {"visibility": 1, "dirty": 2, "cleaned": 3}
_START_FORMATS = ("%m.%d.%YT%H:%M", "%m.%d.%YT%H:%M:%S")


def parse_start(text: str) -> str:
    """ISO UTC start time from ISO text or the job's ``MM.DD.YYYYTHH:MM`` form."""
    for fmt in _START_FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), fmt).isoformat()
        except ValueError:
            pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"START_DATE_AND_TIME '{text}' is neither ISO (2020-04-26T16:36) nor "
                         f"MM.DD.YYYYTHH:MM (04.26.2020T16:36).") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat()


def channel_frequencies(start_freq: float, end_freq: float, freq_inc: float) -> np.ndarray:
    """The job's channels: ``start + k·inc`` for ``k < floor((end − start) / inc)``."""
    if freq_inc <= 0 or end_freq <= start_freq or start_freq <= 0:
        raise UsageError(f"Need 0 < START_FREQ_HZ < END_FREQ_HZ and FREQ_INC_HZ > 0 "
                         f"(got {start_freq}, {end_freq}, {freq_inc}).")
    nchan = math.floor((end_freq - start_freq) / freq_inc)
    if nchan < 1:
        raise UsageError(f"FREQ_INC_HZ={freq_inc} is larger than END_FREQ_HZ − START_FREQ_HZ "
                         f"({end_freq - start_freq} Hz): no channel.")
    return start_freq + freq_inc * np.arange(nchan)


def primary_beam_fwhm(layout: Layout, freq: float) -> float:
    """FWHM (rad) of the Gaussian primary beam: 1.25 λ / D with D the largest dish."""
    return 1.25 * SPEED_OF_LIGHT / freq / float(np.max(layout.dish_diameter))


def _sky(sky_model: str, catalogue: str, ra: float, dec: float, fwhm: float, ref_freq: float,
         nsources: int, flux_min: float, seed: int) -> SkyModel:
    if sky_model.upper() in SURVEY_SKIES:
        raise UsageError(f"SKY_MODEL={sky_model}: radioflow does not ship the {sky_model} survey catalogue. "
                         f"Give a CSV catalogue path (columns name,ra,dec,flux,...; see 'radioflow simulate "
                         f"--catalogue') or 'random' for a GLEAM-like random field.")
    if sky_model == "random":
        sky = random_field(ra, dec, radius=fwhm, nsources=nsources, flux_min=flux_min, flux_max=100 * flux_min,
                           ref_freq=ref_freq, seed=seed)
    else:
        sky = read_catalogue(sky_model)
    write_catalogue(sky, catalogue)
    return sky


def _attenuate(sky: SkyModel, ra: float, dec: float, fwhm: float) -> SkyModel:
    """Apparent sky: fluxes times the Gaussian primary beam at each component's offset."""
    lmn = sky.lmn(ra, dec)
    r2 = lmn[:, 0] ** 2 + lmn[:, 1] ** 2
    gain = np.exp(-4 * math.log(2) * r2 / fwhm**2)
    gain[lmn[:, 2] <= 0] = 0.0
    return dataclasses.replace(sky, flux=sky.flux * gain)


def simulate_aastar(ms: str, catalogue: str, sky_model: str = "random", telescope: str = "ska-mid-aastar",
                    ra: float = 150.12, dec: float = 2.21, start_freq: float = 1.304e9, end_freq: float = 1.375e9,
                    freq_inc: float = 26123.0, obs_length_hours: float = 4.0, num_time_stamps: int = 1800,
                    start: str = "04.26.2020T16:36", nsources: int = 50, flux_min: float = 1e-3,
                    noise_sigma: float = 0.0, seed: int = 1) -> dict:
    """Simulate the AA* observation into the MS ``ms`` (DATA = apparent sky, optional noise)."""
    layout = load_layout(telescope)
    freqs = channel_frequencies(start_freq, end_freq, freq_inc)
    if num_time_stamps < 1 or obs_length_hours <= 0:
        raise UsageError(f"Need NUM_TIME_STAMPS ≥ 1 and OBS_LENGTH_HOURS > 0 (got {num_time_stamps}, "
                         f"{obs_length_hours}).")
    duration = obs_length_hours * 3600.0
    obs = make_observation(ra=math.radians(ra), dec=math.radians(dec), layout=layout, freq_min=float(freqs[0]),
                           freq_max=float(freqs[-1]), nchan=freqs.size, start=parse_start(start),
                           duration=duration, integration=duration / num_time_stamps)
    obs = dataclasses.replace(obs, frequencies=freqs, channel_width=np.full(freqs.size, float(freq_inc)))
    ref_freq = float(freqs.mean())
    fwhm = primary_beam_fwhm(layout, ref_freq)
    sky = _sky(sky_model, catalogue, obs.ra, obs.dec, fwhm, ref_freq, nsources, flux_min, seed)
    apparent = _attenuate(sky, obs.ra, obs.dec, fwhm)
    ds = simulate(layout, obs, apparent, noise_sigma=noise_sigma or None, seed=seed,
                  telescope_name=layout.telescope or layout.name, field_name=f"J{ra:07.3f}{dec:+07.3f}")
    Path(ms).parent.mkdir(parents=True, exist_ok=True)
    write_ms(ds, ms, overwrite=True)
    say(f"AA* simulation: {layout.name} ({layout.n} stations), {obs.times.size} times × {freqs.size} channels "
        f"{freqs[0] / 1e9:.4f}–{freqs[-1] / 1e9:.4f} GHz, {len(sky)} sources, beam FWHM "
        f"{math.degrees(fwhm):.3f}° -> {ms}")
    return {"ms": ms, "fov_deg": math.degrees(fwhm), "nchan": int(freqs.size)}


#: with the automatic cell, baselines longer than 1/(UV_LIMIT_PIXELS · cell) wavelengths are not imaged,
#: so the PSF main lobe spans about this many pixels (WSClean's -maxuv-l does the same by hand).
UV_LIMIT_PIXELS = 5.0


def limit_uv(ds: Any, cell: float) -> float:
    """Flag visibilities the grid cannot sample (|uv| > 1/(UV_LIMIT_PIXELS·cell) wavelengths); returns the limit."""
    limit = 1.0 / (UV_LIMIT_PIXELS * cell)
    uvw = ds["UVW"].values                                     # (time, baseline, 3) metres
    uvdist = np.hypot(uvw[..., 0], uvw[..., 1])[..., None] * ds["frequency"].values / SPEED_OF_LIGHT
    ds["FLAG"].values[...] |= (uvdist > limit)[..., None]
    return float(limit)


def image_cell(fov_deg: float, npixel: int, cellsize: float | None) -> float:
    """Pixel size (rad): ``cellsize`` if given, else the field of view over ``npixel``."""
    if npixel < 2:
        raise UsageError(f"IMAGING_NPIXEL must be at least 2, got {npixel}.")
    if cellsize is not None:
        if cellsize <= 0:
            raise UsageError(f"IMAGING_CELLSIZE must be positive (radians), got {cellsize}.")
        return float(cellsize)
    return math.radians(fov_deg) / npixel


def _observation_keywords(ms: str) -> dict[str, object]:
    """FITS keywords for the observation an image comes from (times, telescope, target)."""
    from astropy.time import Time

    from ..ops.lake.obscore import ms_summary

    s = ms_summary(ms)
    begin, end = Time([s.t_min, s.t_max], format="mjd", scale="utc").isot
    return {"DATE-BEG": str(begin), "DATE-END": str(end), "MJD-BEG": s.t_min, "MJD-END": s.t_max, "XPOSURE": s.t_exptime, "TELAPSE": (s.t_max - s.t_min) * 86400.0,
            "TIMESYS": "UTC", "TELESCOP": s.telescope, "INSTRUME": s.telescope, "OBJECT": s.field_name}


def dirty_image(ms: str, image: str, npixel: int, fov_deg: float, cellsize: float | None = None,
                weighting: str = "uniform", nthreads: int = 0) -> dict:
    """Stokes-I MFS dirty image of ``ms`` (all channels) with the PSF's fitted beam in the header."""
    from ..science.beam import fit_restoring_beam
    from ..science.fits import write_fits_image
    from ..science.image_dataset import dirty_and_psf
    from ..vis.ms import read_ms

    cell = image_cell(fov_deg, npixel, cellsize)
    ds = read_ms(ms, columns=["DATA"], correlations=["XX", "YY"])
    history = [f"radioflow srcnet dirty image of {Path(ms).name}, {weighting} weighting"]
    if cellsize is None:
        history.append(f"automatic cell (fov/npixel): baselines beyond {limit_uv(ds, cell):.6g} wavelengths not imaged")
    prod = dirty_and_psf(ds, npix_x=npixel, npix_y=npixel, cell=cell, weighting=weighting,
                         nthreads=gridding_threads(nthreads), overwrite_data=True)
    assert prod.psf is not None
    beam = fit_restoring_beam(prod.psf, cell, cell)
    write_fits_image(image, prod.dirty, ra=prod.ra, dec=prod.dec, cell_x=cell, cell_y=cell, freq=prod.freq,
                     bandwidth=prod.bandwidth, beam=beam, extra=_observation_keywords(ms), history=history)
    say(f"Dirty image {npixel}² × {math.degrees(cell) * 3600:.3g}\" -> {image} (peak {prod.dirty.max():.4g} Jy/beam)")
    return {"image": image, "cell": cell}


def cleaned_image(ms: str, image: str, npixel: int, fov_deg: float, cellsize: float | None = None,
                  weighting: str = "uniform", niter: int = 1000, auto_threshold: float = 3.0,
                  nmajor: int = 5, nthreads: int = 0) -> dict:
    """Cotton–Schwab CLEAN of ``ms``: the restored MFS image is the product; model/residual/PSF are discarded."""
    from ..science.deconvolve import clean
    from ..science.fits import write_fits_image
    from ..science.imaging import imaging_weights, stokes_i, uvw_rows
    from ..vis.ms import read_ms

    cell = image_cell(fov_deg, npixel, cellsize)
    ds = read_ms(ms, columns=["DATA"], correlations=["XX", "YY"])
    history = []
    if cellsize is None:
        history.append(f"automatic cell (fov/npixel): baselines beyond {limit_uv(ds, cell):.6g} wavelengths not imaged")
    vis, wgt, flag = stokes_i(ds, "DATA", overwrite=True)
    uvw, freq = uvw_rows(ds), ds["frequency"].values
    w = imaging_weights(uvw, freq, wgt, flag, npixel, npixel, cell, cell, weighting)  # type: ignore[arg-type]
    res = clean(uvw, freq, vis, w, npixel, npixel, cell, cell, niter=niter, auto_threshold=auto_threshold,
                nmajor=nmajor, nthreads=gridding_threads(nthreads))
    width = ds["CHANNEL_WIDTH"].values
    lo, hi = float(np.min(freq - width / 2)), float(np.max(freq + width / 2))
    ra, dec = ds.attrs["phase_center"]
    write_fits_image(image, res.restored, ra=ra, dec=dec, cell_x=cell, cell_y=cell, freq=0.5 * (lo + hi),
                     bandwidth=hi - lo, beam=res.beam, extra=_observation_keywords(ms),
                     history=history + [f"radioflow srcnet cleaned image of {Path(ms).name}: {res.niter} components, "
                                        f"{res.nmajor} major cycles ({res.stop_reason})"])
    say(f"Cleaned image -> {image}: {res.niter} components in {res.nmajor} major cycles ({res.stop_reason})")
    return {"image": image, "components": int(res.niter)}


def write_products(out_dir: str, file_prefix: str, namespace: str, lifetime: int, obs_collection: str,
                   obs_id: str, visibility: bool = False, dirty: bool = False, cleaned: bool = False,
                   discard: bool = True, dataset_name: str | None = None, ivoid_authority: str = "test.skao",
                   ivoid_path: str = "/~", access_url: str = "", target_name: str = "",
                   auxiliary: list[str] | None = None) -> dict:
    """``<file>.meta`` for each selected product (written after the product, atomically); unselected
    products of this run and the ``auxiliary`` files (the sky model) are deleted when ``discard``."""
    from ..ops.lake.meta import ProductIdentity, write_meta

    names = {"visibility": f"{file_prefix}measurements.ms", "dirty": f"{file_prefix}dirty.fits",
             "cleaned": f"{file_prefix}cleaned.fits"}
    chosen = {"visibility": visibility, "dirty": dirty, "cleaned": cleaned}
    if not any(chosen.values()):
        raise UsageError("No data product selected: give at least one of --visibility, --dirty, --cleaned.")
    out = Path(out_dir)
    metas: list[str] = []
    for kind, name in names.items():
        path = out / name
        if chosen[kind]:
            if not path.exists():
                raise UsageError(f"Product {path} was selected (--{kind}) but not made.")
            ident = ProductIdentity(namespace=namespace, name=name, lifetime=lifetime, obs_collection=obs_collection,
                                    obs_id=obs_id, dataset_name=dataset_name, ivoid_authority=ivoid_authority,
                                    ivoid_path=ivoid_path, access_url=access_url, target_name=target_name)
            metas.append(str(write_meta(path, ident, calib_level=CALIB_LEVEL[kind])))
        elif discard and path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if discard:
        for extra in auxiliary or []:
            Path(extra).unlink(missing_ok=True)
    say(f"Data products in {out}: " + ", ".join(n for k, n in names.items() if chosen[k]))
    return {"metas": metas}
