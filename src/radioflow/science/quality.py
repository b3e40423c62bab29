"""Image quality figures: RMS, robust noise, off-source RMS, dynamic range, flux at positions.

Images are ``[y, x]``; positions are ``(x, y)`` pixel coordinates (0-based, FITS axis order),
rounded to the nearest pixel.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UsageError

#: MAD → standard deviation of a Gaussian.
MAD_TO_SIGMA = 1.482602218505602

#: Pixel positions: a sequence of (x, y) pairs or an (n, 2) array.
Positions = Sequence[Sequence[float]] | np.ndarray


def _positions(positions_px: Positions) -> np.ndarray:
    if len(positions_px) == 0:
        return np.zeros((0, 2))
    return np.asarray(positions_px, dtype=np.float64).reshape(-1, 2)


def rms(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean square of ``image`` over the pixels where ``mask`` is True (all if None)."""
    values = np.asarray(image, dtype=np.float64)
    if mask is not None:
        values = values[np.asarray(mask, dtype=bool)]
    if values.size == 0:
        raise UsageError("No pixels left to compute an RMS over: the mask excludes the whole image.")
    return float(np.sqrt(np.mean(values**2)))


def mad_sigma(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Robust noise: 1.4826 × median absolute deviation from the median (WSClean's estimator)."""
    values = np.asarray(image, dtype=np.float64)
    values = values[np.asarray(mask, dtype=bool)] if mask is not None else values.ravel()
    if values.size == 0:
        raise UsageError("No pixels left to estimate the noise from: the mask excludes the whole image.")
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def source_mask(shape: tuple[int, int], positions_px: Positions, radius_px: float) -> np.ndarray:
    """True within ``radius_px`` of any of ``positions_px`` (x, y)."""
    pos = _positions(positions_px)
    y, x = np.indices(shape, dtype=np.float64)
    near = np.zeros(shape, dtype=bool)
    for px, py in pos:
        near |= (x - px) ** 2 + (y - py) ** 2 <= radius_px**2
    return near


def off_source_rms(image: np.ndarray, positions_px: Positions, radius_px: float) -> float:
    """RMS of the pixels farther than ``radius_px`` from every source position."""
    image = np.asarray(image, dtype=np.float64)
    return rms(image, ~source_mask(image.shape, positions_px, radius_px))


def dynamic_range(image: np.ndarray, positions_px: Positions = (), radius_px: float = 10.0) -> float:
    """Peak / off-source RMS; without positions the brightest pixel is the only source."""
    image = np.asarray(image, dtype=np.float64)
    pos = _positions(positions_px)
    if pos.size == 0:
        y, x = np.unravel_index(np.argmax(image), image.shape)
        pos = np.array([[x, y]], dtype=np.float64)
    noise = off_source_rms(image, pos, radius_px)
    peak = float(np.max(image))
    return peak / noise if noise > 0 else float("inf")


def flux_at(image: np.ndarray, positions_px: Positions, box: int = 0) -> np.ndarray:
    """Value at the nearest pixel to each (x, y); with ``box`` > 0 the peak within ±box pixels."""
    image = np.asarray(image, dtype=np.float64)
    ny, nx = image.shape
    out = []
    for px, py in _positions(positions_px):
        x, y = int(round(px)), int(round(py))
        if not (0 <= x < nx and 0 <= y < ny):
            raise UsageError(f"Position (x={px}, y={py}) lies outside the {nx}×{ny} image.")
        if box > 0:
            cut = image[max(0, y - box):y + box + 1, max(0, x - box):x + box + 1]
            out.append(cut.flat[np.argmax(np.abs(cut))])
        else:
            out.append(image[y, x])
    return np.asarray(out, dtype=np.float64)


def flux_in_box(image: np.ndarray, positions_px: Positions, box: int) -> np.ndarray:
    """Sum of pixels within ±box of each (x, y): the integrated flux of a model image (Jy/pixel)."""
    image = np.asarray(image, dtype=np.float64)
    out = []
    for px, py in _positions(positions_px):
        x, y = int(round(px)), int(round(py))
        out.append(image[max(0, y - box):y + box + 1, max(0, x - box):x + box + 1].sum())
    return np.asarray(out, dtype=np.float64)
