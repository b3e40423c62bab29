"""Imaging: visibility weighting and ducc0 w-gridding, with WSClean's conventions.

Image arrays are ``[y, x]`` (FITS order): pixel ``(x, y)`` (0-based) sits at
``l = -(x - N/2)·cell``, ``m = (y - N/2)·cell``. Cells are in radians. Visibilities are
``(nrow, nchan)`` with UVW ``(nrow, 3)`` in metres as stored in the MS
(ANTENNA2 − ANTENNA1, J2000). See ``shared/CONVENTIONS.md``.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from ..errors import UsageError
from .stokes import WeightCombination, stokes_i_hands

SPEED_OF_LIGHT = 299_792_458.0
Weighting = Literal["natural", "uniform", "briggs"]

# Single precision meets ducc0's accuracy down to epsilon 1e-5, by default accumulating on a
# double-precision grid (measured 3e-7 of the peak from the double-precision image, at 0.67 × its
# time; differently chunked data agree to ~1e-8). ``accumulate_double=False`` accumulates in
# single precision: half the grid (3696² complex64 at 2048²: 109 MB instead of 218 MB), images
# within ~1e-6 of the peak, still well inside 1e-5. Tighter requests grid in double precision.
_SINGLE_PRECISION_EPSILON = 1e-5


def _threads(nthreads: int) -> int:
    import os

    return nthreads if nthreads and nthreads > 0 else (os.cpu_count() or 1)


def padded_size(npix: int, padding: float) -> int:
    """WSClean's padded image size: ``ceil(npix·padding)`` rounded up to a multiple of 4.

    The density grid of uniform/Briggs weighting lives on this grid, so the rounding must be
    WSClean's exactly (an even rounding moved 768² and 1024² images by ~4e-3 of the peak).
    """
    n = int(math.ceil(npix * padding))
    return -(-n // 4) * 4


def uv_cell_index(uvw: np.ndarray, freq: np.ndarray, npix_x: int, npix_y: int, cell_x: float,
                  cell_y: float) -> np.ndarray:
    """Per sample ``(nrow, nchan)``, its cell on WSClean's flattened half-plane uv grid (−1 outside).

    A sample and its conjugate land in the same cell (v folded to ≥ 0).
    """
    scale = freq[None, :] / SPEED_OF_LIGHT
    u = uvw[:, 0:1] * scale
    v = uvw[:, 1:2] * scale
    flip = v < 0
    u = np.where(flip, -u, u)
    v = np.where(flip, -v, v)
    x = np.floor(u * npix_x * cell_x + npix_x // 2).astype(np.int64)
    y = np.floor(v * npix_y * cell_y).astype(np.int64)
    inside = (x >= 0) & (x < npix_x) & (y < npix_y // 2)
    return np.where(inside, x + y * npix_x, -1)


def uv_grid_density(
    uvw: np.ndarray, freq: np.ndarray, weight: np.ndarray, npix_x: int, npix_y: int,
    cell_x: float, cell_y: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of weights per uv cell on WSClean's half-plane grid.

    Returns ``(grid, index)``: the flattened half-plane grid and, per sample, its cell index
    (−1 outside the grid), from :func:`uv_cell_index`.
    """
    index = uv_cell_index(uvw, freq, npix_x, npix_y, cell_x, cell_y)
    good = (index >= 0) & (weight > 0)
    grid = np.bincount(index[good], weights=weight[good], minlength=npix_x * (npix_y // 2))
    return grid, index


def rank_filter(grid: np.ndarray, level: float = 3.0, size: int = 16) -> np.ndarray:
    """WSClean's weighting rank filter on a half-plane weight grid ``(ny/2, nx)``.

    A non-zero cell weight above ``level`` × the mean of the non-zero cells in its window
    (``size`` cells wide, ``[i − size/2, i + size/2)`` clipped at the edges) is set to that
    limit. This stops a lone visibility in an empty uv cell from dominating the noise.
    Vectorised with summed-area tables.
    """
    h, w = grid.shape
    d = size // 2

    def box_sum(a: np.ndarray) -> np.ndarray:
        s = np.zeros((h + 1, w + 1))
        s[1:, 1:] = a.cumsum(0).cumsum(1)
        y1, y2 = np.clip(np.arange(h) - d, 0, h), np.minimum(np.arange(h) + d, h)
        x1, x2 = np.clip(np.arange(w) - d, 0, w), np.minimum(np.arange(w) + d, w)
        return s[y2][:, x2] - s[y1][:, x2] - s[y2][:, x1] + s[y1][:, x1]

    nonzero = grid != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        limit = level * box_sum(grid) / box_sum(nonzero.astype(np.float64))
    return np.where(nonzero & (grid > limit), limit, grid)


def imaging_weights(
    uvw: np.ndarray,
    freq: np.ndarray,
    weight: np.ndarray,
    flag: np.ndarray | None,
    npix_x: int,
    npix_y: int,
    cell_x: float,
    cell_y: float,
    scheme: Weighting = "natural",
    robust: float = 0.0,
    padding: float = 1.2,
    rank_filter_level: float = 3.0,
    rank_filter_size: int = 16,
) -> np.ndarray:
    """Imaging weights ``(nrow, nchan)``: natural, uniform or Briggs(robust), flags zeroed.

    Natural weights without flags are ``weight`` itself (as float32): do not modify them in place.

    Computed like WSClean's ``ImageWeights``: the density ``W_k`` (sum of weights per cell) is
    gridded on the uv grid of the *padded* image (``padding`` × size, rounded up to a multiple of 4,
    WSClean's default 1.2); the per-cell factor is ``1/W_k`` for uniform and
    ``1/(1 + W_k f²)`` with ``f² = (5·10^−R)² / (Σ W_k² / Σ w_i)`` for Briggs (empty cells 1);
    WSClean's default rank filter (``rank_filter_level`` 3, ``size`` 16; a level below 1
    turns it off) then caps factors at level × their local mean; a sample's weight is
    ``w_i`` × its cell's factor.
    """
    if scheme == "natural":
        w32 = np.asarray(weight, dtype=np.float32)
        # No flags: the weights themselves (a view, not a copy — 23 M samples are 93 MB).
        return np.where(flag, np.float32(0.0), w32) if flag is not None and flag.any() else w32
    w = unflagged_weights(weight, flag)
    grid = density_grid(uvw, freq, w, npix_x, npix_y, cell_x, cell_y, padding)
    factor = weight_factors(grid, scheme, robust, rank_filter_level, rank_filter_size)
    return apply_weight_factors(factor, uvw, freq, w, cell_x, cell_y)


def unflagged_weights(weight: np.ndarray, flag: np.ndarray | None) -> np.ndarray:
    """Visibility weights as float64 with flagged samples zeroed (the input of the density)."""
    w = np.asarray(weight, dtype=np.float64)
    return np.where(flag, 0.0, w) if flag is not None else w


def density_grid(uvw: np.ndarray, freq: np.ndarray, weight: np.ndarray, npix_x: int, npix_y: int,
                 cell_x: float, cell_y: float, padding: float = 1.2) -> np.ndarray:
    """WSClean's weight density ``(py/2, px)`` on the padded half-plane uv grid.

    Additive over visibilities: the density of a dataset is the sum of its chunks' densities,
    which is how streamed and distributed imaging weight exactly as one in-memory call.
    """
    px, py = (padded_size(n, padding) for n in (npix_x, npix_y))
    grid, _ = uv_grid_density(uvw, np.asarray(freq, np.float64), weight, px, py, cell_x, cell_y)
    return grid.reshape(py // 2, px)


def weight_factors(grid: np.ndarray, scheme: Weighting, robust: float = 0.0, rank_filter_level: float = 3.0,
                   rank_filter_size: int = 16) -> np.ndarray:
    """Per-cell weighting factors from a full density grid: ``1/W`` (uniform) or Briggs', rank-filtered."""
    if scheme == "uniform":
        factor = np.divide(1.0, grid, out=np.zeros_like(grid), where=grid != 0)
    elif scheme == "briggs":
        f2 = (5.0 * 10.0 ** (-robust)) ** 2 / (np.sum(grid**2) / np.sum(grid))
        factor = 1.0 / (1.0 + grid * f2)
    else:
        raise UsageError(f"Unknown weighting '{scheme}': use natural, uniform or briggs ROBUST.")
    if rank_filter_level >= 1.0:
        factor = rank_filter(factor, rank_filter_level, rank_filter_size)
    return factor


def apply_weight_factors(factor: np.ndarray, uvw: np.ndarray, freq: np.ndarray, weight: np.ndarray,
                         cell_x: float, cell_y: float) -> np.ndarray:
    """Imaging weights ``(nrow, nchan)`` float32: each sample's weight × the factor of its cell on
    the padded grid ``factor`` (from :func:`weight_factors`)."""
    px, py = factor.shape[1], 2 * factor.shape[0]
    index = uv_cell_index(uvw, np.asarray(freq, np.float64), px, py, cell_x, cell_y)
    flat = factor.ravel()
    out = np.where(index >= 0, flat[np.maximum(index, 0)], 0.0) * weight
    return out.astype(np.float32)


def _dtypes(epsilon: float) -> tuple[type, type]:
    """(complex, real) dtypes ducc0 grids in for accuracy ``epsilon``."""
    if epsilon < _SINGLE_PRECISION_EPSILON:
        return np.complex128, np.float64
    return np.complex64, np.float32


def _precision(vis: np.ndarray, epsilon: float) -> tuple[np.ndarray, type]:
    cplx, real = _dtypes(epsilon)
    return np.asarray(vis, cplx), real


def grid_xy(
    uvw: np.ndarray,
    freq: np.ndarray,
    vis: np.ndarray,
    wgt: np.ndarray | None,
    npix_x: int,
    npix_y: int,
    cell_x: float,
    cell_y: float,
    *,
    epsilon: float = 1e-5,
    nthreads: int = 0,
    accumulate_double: bool = True,
) -> np.ndarray:
    """ducc0's unnormalised dirty image as it comes, ``[x, y]`` in the gridding precision.

    Streamed imaging sums these in that order and transposes once at the end. ``wgt`` None: the
    weights are already folded into ``vis``. ``accumulate_double`` False halves the uv grid's
    memory at ~1e-6 of the peak (see ``_SINGLE_PRECISION_EPSILON``).
    """
    from ducc0.wgridder.experimental import vis2dirty

    vis_c, real = _precision(vis, epsilon)
    return vis2dirty(
        uvw=np.ascontiguousarray(uvw, np.float64), freq=np.asarray(freq, np.float64),
        vis=np.ascontiguousarray(vis_c), wgt=None if wgt is None else np.ascontiguousarray(wgt, dtype=real),
        npix_x=npix_x, npix_y=npix_y, pixsize_x=cell_x, pixsize_y=cell_y, epsilon=epsilon, do_wgridding=True,
        nthreads=_threads(nthreads), flip_u=False, flip_v=True, flip_w=False, divide_by_n=False,
        double_precision_accumulation=accumulate_double,
    )


def vis_to_image(
    uvw: np.ndarray,
    freq: np.ndarray,
    vis: np.ndarray,
    wgt: np.ndarray,
    npix_x: int,
    npix_y: int,
    cell_x: float,
    cell_y: float,
    *,
    epsilon: float = 1e-5,
    nthreads: int = 0,
    normalise: bool = True,
    accumulate_double: bool = True,
) -> np.ndarray:
    """Dirty image ``[y, x]`` of weighted visibilities; Jy/beam when ``normalise`` (÷ Σ wgt)."""
    dirty = grid_xy(uvw, freq, vis, wgt, npix_x, npix_y, cell_x, cell_y, epsilon=epsilon, nthreads=nthreads,
                    accumulate_double=accumulate_double).T
    if normalise:
        total = float(np.sum(wgt, dtype=np.float64))
        if total <= 0:
            raise UsageError("Nothing to image: every visibility is flagged or has zero weight.")
        dirty = dirty / total
    return np.ascontiguousarray(dirty, dtype=np.float64)


def psf_image(
    uvw: np.ndarray,
    freq: np.ndarray,
    wgt: np.ndarray,
    npix_x: int,
    npix_y: int,
    cell_x: float,
    cell_y: float,
    *,
    epsilon: float = 1e-5,
    nthreads: int = 0,
) -> np.ndarray:
    """Point-spread function ``[y, x]``, normalised to 1 at the image centre."""
    ones: np.ndarray = np.ones(np.shape(wgt), _dtypes(epsilon)[0])
    return vis_to_image(uvw, freq, ones, wgt, npix_x, npix_y, cell_x, cell_y,
                        epsilon=epsilon, nthreads=nthreads, normalise=True)


def image_to_vis(
    image_yx: np.ndarray,
    uvw: np.ndarray,
    freq: np.ndarray,
    npix_x: int,
    npix_y: int,
    cell_x: float,
    cell_y: float,
    *,
    epsilon: float = 1e-5,
    nthreads: int = 0,
) -> np.ndarray:
    """Model visibilities ``(nrow, nchan)`` of a model image ``[y, x]`` in Jy/pixel."""
    from ducc0.wgridder.experimental import dirty2vis

    real = _dtypes(epsilon)[1]
    if image_yx.shape != (npix_y, npix_x):
        raise UsageError(f"Model image has shape {image_yx.shape}, expected {(npix_y, npix_x)}.")
    return dirty2vis(
        uvw=np.ascontiguousarray(uvw, np.float64), freq=np.asarray(freq, np.float64),
        dirty=np.ascontiguousarray(image_yx.T, dtype=real), pixsize_x=cell_x, pixsize_y=cell_y,
        epsilon=epsilon, do_wgridding=True, nthreads=_threads(nthreads),
        flip_u=False, flip_v=True, flip_w=False, divide_by_n=False,
    ).astype(np.complex128)


def stokes_i(ds: Any, column: str = "DATA", *, overwrite: bool = False,
             combination: WeightCombination = "wsclean") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stokes I ``(vis, weight, flag)`` as ``(rows, nchan)`` arrays of a dataset or :class:`ParallelHands`.

    I = (XX + YY)/2 or (RR + LL)/2, flagged if either parallel hand is flagged (or not finite);
    the weight combines the hands' weights as WSClean 3.1 does (``combination="wsclean"``,
    4·min) or as the inverse variance of the average (``"optimal"``): see :mod:`.stokes`.
    Single-correlation data pass through. ``overwrite`` forms the results in the front of the
    input's own arrays and returns views of them (no new memory: for data read only to be imaged).
    """
    if hasattr(ds, "hands"):  # ParallelHands: plain numpy rows of an MS
        data, weight, flag, pols = ds.data, ds.weight, ds.flag, list(ds.polarization)
        nrow, nchan = data.shape[:2]
    else:
        from ..vis.schema import column_variable

        var = column_variable(column)
        if var not in ds:
            raise UsageError(f"Data column {column} is not in the dataset (it has "
                             f"{', '.join(str(v) for v in ds.data_vars)}).")
        pols = [str(p) for p in ds["polarization"].values]
        data, weight, flag = ds[var].values, ds["WEIGHT"].values, ds["FLAG"].values
        nrow, nchan = data.shape[0] * data.shape[1], data.shape[2]
    pairs = [("XX", "YY"), ("RR", "LL")]
    idx = next(((pols.index(a), pols.index(b)) for a, b in pairs if a in pols and b in pols), None)
    if idx is None:
        if "I" in pols:
            k = pols.index("I")
            return (data[..., k].reshape(nrow, nchan), weight[..., k].reshape(nrow, nchan),
                    flag[..., k].reshape(nrow, nchan))
        raise UsageError(f"Cannot form Stokes I from correlations {pols}.")
    ncorr = data.shape[-1]
    d2, w2, f2 = (np.ascontiguousarray(x).reshape(-1, ncorr) for x in (data, weight, flag))
    writable = (d2.dtype == np.complex64 and w2.dtype == np.float32 and f2.dtype == np.bool_
                and all(x.flags.writeable for x in (d2, w2, f2)))
    vis, w, f = stokes_i_hands(d2, w2, f2, idx[0], idx[1], combination, overwrite=overwrite and writable)
    return vis.reshape(nrow, nchan), w.reshape(nrow, nchan), f.reshape(nrow, nchan)


PARALLEL_HANDS = ("XX", "YY", "RR", "LL", "I")


def parallel_hands(vis_i: np.ndarray, polarization) -> np.ndarray:
    """Unpolarised Stokes-I visibilities ``(...)`` into correlations ``(..., npol)``.

    The inverse of :func:`stokes_i` for an unpolarised sky: XX = YY = I (RR = LL = I), cross
    hands zero.
    """
    pols = [str(p) for p in polarization]
    out = np.zeros((*np.shape(vis_i), len(pols)), np.complex64)
    for i, p in enumerate(pols):
        if p in PARALLEL_HANDS:
            out[..., i] = vis_i
    return out


def uvw_rows(ds: Any) -> np.ndarray:
    """UVW as ``(rows, 3)`` metres, matching :func:`stokes_i` rows (a dataset or ParallelHands)."""
    uvw = ds.uvw if hasattr(ds, "hands") else ds["UVW"].values
    return uvw.reshape(-1, 3)
