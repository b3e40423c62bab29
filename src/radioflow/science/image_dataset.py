"""Dirty image and PSF, or CLEAN, of a visibility dataset (the work behind ``radioflow image``)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from .imaging import imaging_weights, psf_image, stokes_i, uvw_rows, vis_to_image
from .stokes import WeightCombination

if TYPE_CHECKING:
    import xarray as xr

    from .deconvolve import CleanResult
    from .major_cycle import CubeClean

PSF_EPSILON = 1e-4


@dataclass
class DirtyProducts:
    """A dirty image and its PSF (``[y, x]``, Jy/beam) with what a FITS header needs."""

    dirty: np.ndarray
    psf: np.ndarray | None
    ra: float
    dec: float
    cell_x: float
    cell_y: float
    freq: float
    bandwidth: float
    sum_weights: float


def band_and_centre(ds: xr.Dataset) -> tuple[float, float, float, float]:
    """``(centre frequency, bandwidth, ra, dec)`` of a dataset, for an image's FITS header."""
    freq = ds["frequency"].values
    width = ds["CHANNEL_WIDTH"].values if "CHANNEL_WIDTH" in ds else np.full(freq.size, 0.0)
    lo, hi = float(np.min(freq - width / 2)), float(np.max(freq + width / 2))
    ra, dec = ds.attrs["phase_center"]
    return 0.5 * (lo + hi), hi - lo, float(ra), float(dec)


def _weighted_stokes_i(ds: xr.Dataset, column: str, npix_x: int, npix_y: int, cell: float, weighting: str,
                       robust: float, rank_filter_level: float, rank_filter_size: int,
                       overwrite: bool, combination: WeightCombination = "wsclean",
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(uvw, freq, Stokes I vis, imaging weights)`` of ``ds``: what every imager here grids."""
    vis, wgt, flag = stokes_i(ds, column, overwrite=overwrite, combination=combination)
    uvw = uvw_rows(ds)
    freq = ds["frequency"].values
    w = imaging_weights(uvw, freq, wgt, flag, npix_x, npix_y, cell, cell,
                        cast(Literal["natural", "uniform", "briggs"], weighting), robust,
                        rank_filter_level=rank_filter_level, rank_filter_size=rank_filter_size)
    return uvw, freq, vis, w


def dirty_and_psf(
    ds: xr.Dataset,
    *,
    npix_x: int,
    npix_y: int,
    cell: float,
    weighting: str = "natural",
    robust: float = 0.0,
    column: str = "DATA",
    epsilon: float = 1e-5,
    nthreads: int = 0,
    rank_filter_level: float = 3.0,
    rank_filter_size: int = 16,
    make_psf: bool = True,
    overwrite_data: bool = False,
    combination: WeightCombination = "wsclean",
) -> DirtyProducts:
    """Stokes-I dirty image and (unless ``make_psf`` is false) PSF of ``ds`` with the given weighting.

    ``rank_filter_level``/``rank_filter_size`` are WSClean's weighting rank filter (on by
    default there, as here; a level below 1 turns it off). ``overwrite_data`` lets Stokes I be
    formed inside the dataset's own arrays (no new memory; the dataset is spent afterwards).
    ``combination`` is how XX/YY weights make the Stokes I weight (:mod:`.stokes`).
    """
    uvw, freq, vis, w = _weighted_stokes_i(ds, column, npix_x, npix_y, cell, weighting, robust,
                                           rank_filter_level, rank_filter_size, overwrite_data, combination)
    # The PSF is for people and beam fits: 1e-4 accuracy is ample and grids ~40 % faster. It
    # grids beside the dirty image (ducc0 releases the GIL): their serial phases (sorting,
    # FFTs, w-plane set-up) overlap: measured 8–13 % less wall time than one after the other.
    with ThreadPoolExecutor(1, thread_name_prefix="psf") as pool:
        psf_job = pool.submit(psf_image, uvw, freq, w, npix_x, npix_y, cell, cell,
                              epsilon=max(epsilon, PSF_EPSILON), nthreads=nthreads) if make_psf else None
        dirty = vis_to_image(uvw, freq, vis, w, npix_x, npix_y, cell, cell, epsilon=epsilon, nthreads=nthreads)
        psf = psf_job.result() if psf_job is not None else None
    centre, bandwidth, ra, dec = band_and_centre(ds)
    return DirtyProducts(dirty=dirty, psf=psf, ra=ra, dec=dec, cell_x=cell, cell_y=cell, freq=centre,
                         bandwidth=bandwidth, sum_weights=float(w.sum(dtype=np.float64)))


@dataclass
class CleanProducts:
    """What ``radioflow image -niter N`` writes: WSClean's dirty, PSF, model, residual and image
    (``cube`` has one plane per output channel group; ``result`` is the MFS / single image)."""

    dirty: np.ndarray
    result: CleanResult
    ra: float
    dec: float
    cell: float
    freq: float
    bandwidth: float
    cube: CubeClean | None = None


def clean_dataset(
    ds: xr.Dataset,
    *,
    npix_x: int,
    npix_y: int,
    cell: float,
    weighting: str = "natural",
    robust: float = 0.0,
    column: str = "DATA",
    epsilon: float = 1e-5,
    nthreads: int = 0,
    rank_filter_level: float = 3.0,
    rank_filter_size: int = 16,
    auto_mask: float | None = None,
    channels_out: int = 1,
    spectral_terms: int = 0,
    **clean_options: Any,
) -> CleanProducts:
    """Dirty image, then Cotton–Schwab CLEAN of ``ds`` held in memory, with WSClean's options.

    ``auto_mask`` is WSClean's ``-auto-mask``: CLEAN first down to that many sigma, take the
    cleaned components as the mask, then continue inside it down to the normal thresholds
    (``clean_options['auto_threshold']`` / ``threshold``) with the remaining iterations.
    ``channels_out`` > 1 splits the band into groups deconvolved jointly (``-join-channels``,
    weighted over the whole band); the streamed equivalent is
    :func:`radioflow.science.stream_clean.stream_clean`.
    """
    from .major_cycle import ArrayImager, mfs_combine
    from .stream_clean import channel_groups, clean_auto_mask

    uvw, freq, vis, w = _weighted_stokes_i(ds, column, npix_x, npix_y, cell, weighting, robust,
                                           rank_filter_level, rank_filter_size, False)
    groups = channel_groups(np.size(freq), channels_out)
    imager = ArrayImager(uvw, np.asarray(freq, np.float64), vis, w, npix_x, npix_y, cell, cell, groups=groups,
                         epsilon=epsilon, nthreads=nthreads)
    centres = np.array([0.5 * (freq[lo] + freq[hi - 1]) for lo, hi in groups])
    cube = clean_auto_mask(imager, cell, auto_mask, freqs=centres, spectral_terms=spectral_terms, **clean_options)
    centre, bandwidth, ra, dec = band_and_centre(ds)
    return CleanProducts(dirty=mfs_combine(cube.dirty, cube.weights), result=cube.mfs, ra=ra, dec=dec, cell=cell,
                         freq=centre, bandwidth=bandwidth, cube=cube)


def clean_auto_masked(uvw: np.ndarray, freq: np.ndarray, vis: np.ndarray, wgt: np.ndarray, npix_x: int, npix_y: int,
                      cell_x: float, cell_y: float, auto_mask: float | None, **options: Any) -> CleanResult:
    """:func:`~radioflow.science.deconvolve.clean` with WSClean's ``-auto-mask``: CLEAN first down to
    ``auto_mask`` sigmas, take the cleaned components as the mask, then continue inside it down to
    the normal thresholds (``auto_threshold`` / ``threshold``) with the remaining iterations.
    Without ``auto_mask`` (None or 0) it is a plain CLEAN."""
    from .deconvolve import clean

    if not auto_mask:
        return clean(uvw, freq, vis, wgt, npix_x, npix_y, cell_x, cell_y, **options)
    first = clean(uvw, freq, vis, wgt, npix_x, npix_y, cell_x, cell_y, **dict(options, auto_threshold=auto_mask))
    remaining = int(options.get("niter", 1000)) - first.niter
    final_auto = options.get("auto_threshold")
    if remaining <= 0 or (final_auto is not None and final_auto >= auto_mask):
        return first
    result = clean(uvw, freq, vis, wgt, npix_x, npix_y, cell_x, cell_y,
                   **dict(options, niter=remaining, mask=first.model != 0, start_model=first.model))
    result.niter += first.niter
    result.nmajor += first.nmajor
    return result
