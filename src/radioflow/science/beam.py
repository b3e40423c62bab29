"""Restoring beam: fit an elliptical Gaussian to the PSF main lobe, and restore a CLEAN model.

Angles follow FITS: ``bmaj``/``bmin`` are full widths at half maximum and ``bpa`` is the
position angle of the major axis measured from north (+m) through east (+l), all in radians
here (convert to degrees for BMAJ/BMIN/BPA headers). Images are ``[y, x]`` with
``l = -(x - N/2)·cell_x``, ``m = (y - N/2)·cell_y``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage, optimize, signal

from ..errors import UsageError

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: Pixels above this fraction of the PSF peak, connected to the centre, form the main lobe.
MAIN_LOBE_LEVEL = 0.35


def _lm_offsets(shape: tuple[int, int], cy: float, cx: float, cell_x: float, cell_y: float):
    y, x = np.indices(shape, dtype=np.float64)
    return -(x - cx) * cell_x, (y - cy) * cell_y


def gaussian_image(shape: tuple[int, int], beam: tuple[float, float, float], cell_x: float,
                   cell_y: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """Peak-1 elliptical Gaussian ``[y, x]`` of ``beam = (bmaj, bmin, bpa)`` at ``centre`` (y, x)."""
    cy, cx = centre if centre is not None else (shape[0] // 2, shape[1] // 2)
    l, m = _lm_offsets(shape, cy, cx, cell_x, cell_y)
    return np.exp(-_quadratic_form(beam, l, m))


def _quadratic_form(beam: tuple[float, float, float], l: np.ndarray, m: np.ndarray) -> np.ndarray:
    bmaj, bmin, bpa = beam
    smaj, smin = bmaj / FWHM_PER_SIGMA, bmin / FWHM_PER_SIGMA
    # Major axis along (l, m) = (sin bpa, cos bpa).
    along = l * np.sin(bpa) + m * np.cos(bpa)
    across = l * np.cos(bpa) - m * np.sin(bpa)
    return 0.5 * (along**2 / smaj**2 + across**2 / smin**2)


def _beam_from_quadratic(a: float, b: float, c: float) -> tuple[float, float, float]:
    """Beam of ``exp(-(a l² + 2b l m + c m²))``."""
    q = np.array([[a, b], [b, c]])
    evals, evecs = np.linalg.eigh(q)
    if evals[0] <= 0:
        raise UsageError("The PSF main lobe is not a peak (its curvature is not negative); "
                         "check the PSF image and the cell size.")
    smaj = 1.0 / np.sqrt(2.0 * evals[0])
    smin = 1.0 / np.sqrt(2.0 * evals[1])
    el, em = evecs[:, 0]
    bpa = float(np.arctan2(el, em))
    # Position angles are defined modulo pi; keep them in (-pi/2, pi/2].
    if bpa > np.pi / 2:
        bpa -= np.pi
    elif bpa <= -np.pi / 2:
        bpa += np.pi
    return float(smaj * FWHM_PER_SIGMA), float(smin * FWHM_PER_SIGMA), bpa


def fit_restoring_beam(psf: np.ndarray, cell_x: float, cell_y: float, level: float = MAIN_LOBE_LEVEL,
                       method: str = "mainlobe") -> tuple[float, float, float]:
    """Fit ``(bmaj, bmin, bpa)`` in radians to the PSF.

    ``method="mainlobe"`` (CASA's ``psfcutoff``): fit the pixels above ``level`` × peak connected
    to the peak at the image centre ``(N/2, N/2)``; a linear least-squares fit of ``log psf``
    starts a non-linear least-squares fit of a peak-1, centred Gaussian. ``method="wsclean"``
    reproduces WSClean 3.1 exactly: a fit to every pixel, sidelobes included, of a centred box
    10 beam widths across (enlarged until the beam is under 1/8 of it), where WSClean's fitter
    only sees the quadrant ``x ≥ N/2, y ≥ N/2`` (its unsigned pixel-offset arithmetic sends the
    other three quadrants to infinity).
    """
    if method not in ("mainlobe", "wsclean"):
        raise UsageError(f"Unknown beam-fitting method '{method}': use 'mainlobe' or 'wsclean'.")
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2:
        raise UsageError(f"The PSF must be a 2-D image [y, x]; got shape {psf.shape}.")
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    peak = psf[cy, cx]
    if not peak > 0:
        raise UsageError("The PSF has no positive peak at the image centre; it cannot be fitted.")
    norm = psf / peak
    labels, _ = ndimage.label(norm > level)
    lobe = labels == labels[cy, cx]
    if lobe.sum() < 5:
        raise UsageError(f"The PSF main lobe covers only {int(lobe.sum())} pixel(s): the cell size is "
                         "too large for the resolution; use a smaller cell (about 1/3 to 1/5 of the beam).")
    l, m = _lm_offsets(psf.shape, cy, cx, cell_x, cell_y)
    lv, mv, val = l[lobe], m[lobe], norm[lobe]
    scale = max(cell_x, cell_y)
    lv_s, mv_s = lv / scale, mv / scale
    design = np.stack([lv_s**2, 2 * lv_s * mv_s, mv_s**2], axis=1)
    coef, *_ = np.linalg.lstsq(design, -np.log(val), rcond=None)

    def residual(p: np.ndarray) -> np.ndarray:
        return np.exp(-(p[0] * lv_s**2 + 2 * p[1] * lv_s * mv_s + p[2] * mv_s**2)) - val

    fit = optimize.least_squares(residual, coef, method="lm")
    beam = _beam_from_quadratic(*(fit.x / scale**2))
    if method == "wsclean":
        beam = _fit_wsclean(psf / peak, cell_x, cell_y, beam, fit.x / scale**2)
    return beam


def _fit_wsclean(norm: np.ndarray, cell_x: float, cell_y: float, beam: tuple[float, float, float],
                 coef: np.ndarray) -> tuple[float, float, float]:
    ny, nx = norm.shape
    cy, cx = ny // 2, nx // 2
    cell = 0.5 * (cell_x + cell_y)
    estimate = beam[0] / cell
    for _ in range(5):
        size = int(max(10, np.ceil(10 * estimate)))
        size += size % 2
        hy, hx = min(size, ny) // 2, min(size, nx) // 2
        box = norm[cy:cy + hy, cx:cx + hx]
        l, m = _lm_offsets(box.shape, 0, 0, cell_x / cell, cell_y / cell)

        def residual(p: np.ndarray, l: np.ndarray = l, m: np.ndarray = m, box: np.ndarray = box) -> np.ndarray:
            return (np.exp(-np.minimum(p[0] * l**2 + 2 * p[1] * l * m + p[2] * m**2, 700.0)) - box).ravel()

        fit = optimize.least_squares(residual, coef * cell**2, method="lm")
        coef = fit.x / cell**2
        beam = _beam_from_quadratic(*coef)
        if beam[0] / cell * 8.0 < 2 * min(hy, hx) or (2 * hy >= ny and 2 * hx >= nx):
            break
        estimate = max(estimate, beam[0] / cell)
    return beam


def restore(model: np.ndarray, residual: np.ndarray, beam: tuple[float, float, float],
            cell_x: float, cell_y: float) -> np.ndarray:
    """Restored image (Jy/beam): model (Jy/pixel) convolved with the peak-1 beam, plus residual."""
    model = np.asarray(model, dtype=np.float64)
    residual = np.asarray(residual, dtype=np.float64)
    if model.shape != residual.shape:
        raise UsageError(f"Model {model.shape} and residual {residual.shape} images differ in shape.")
    smaj = beam[0] / FWHM_PER_SIGMA
    half_y = int(np.ceil(5.0 * smaj / cell_y))
    half_x = int(np.ceil(5.0 * smaj / cell_x))
    half_y = min(half_y, model.shape[0])
    half_x = min(half_x, model.shape[1])
    kernel = gaussian_image((2 * half_y + 1, 2 * half_x + 1), beam, cell_x, cell_y, centre=(half_y, half_x))
    if not np.any(model):
        return residual.copy()
    return signal.fftconvolve(model, kernel, mode="same") + residual
