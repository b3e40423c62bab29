"""CLEAN deconvolution: Hogbom and multi-scale minor cycles, Cotton–Schwab major cycles.

Minor cycles work on arrays ``[y, x]`` in Jy/beam with a peak-normalised PSF centred at
``(N/2, N/2)`` (it may be the same size as the image: patches are clipped at the edges).
They return a model in Jy/pixel. The major cycle (:func:`clean`) subtracts the model from
the visibilities through ducc0 (``radioflow.science.imaging``) and re-images the residual,
like WSClean's ``-mgain`` Cotton–Schwab loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
from numba import njit
from scipy import signal

from ..errors import UsageError

#: Scales whose PSF response (K_s * PSF)(0) is below this fraction of the delta's are dropped.
MIN_SCALE_RESPONSE = 0.05

# --------------------------------------------------------------------------------------------
# numba kernels


@njit(cache=True)
def _row_absmax(img, allowed, r0, r1, rowmax, rowarg):
    """Per-row max |img| over allowed pixels, for rows r0..r1-1 (-1 if none allowed)."""
    nx = img.shape[1]
    for y in range(r0, r1):
        best = -1.0
        arg = 0
        for x in range(nx):
            if allowed[y, x]:
                a = abs(img[y, x])
                if a > best:
                    best = a
                    arg = x
        rowmax[y] = best
        rowarg[y] = arg


@njit(cache=True)
def _subtract_patch(img, patch, py, px, amp):
    """img[py+dy, px+dx] -= amp·patch[h+dy, h+dx] for the (2h+1)² patch, clipped to img.

    Returns the affected row range (r0, r1).
    """
    ny, nx = img.shape
    hy = patch.shape[0] // 2
    hx = patch.shape[1] // 2
    y0 = max(-hy, -py)
    y1 = min(hy, ny - 1 - py)
    x0 = max(-hx, -px)
    x1 = min(hx, nx - 1 - px)
    for dy in range(y0, y1 + 1):
        for dx in range(x0, x1 + 1):
            img[py + dy, px + dx] -= amp * patch[hy + dy, hx + dx]
    return py + y0, py + y1 + 1


@njit(cache=True)
def _hogbom_loop(res, patch, allowed, model, gain, niter, threshold):
    ny = res.shape[0]
    rowmax = np.empty(ny)
    rowarg = np.zeros(ny, dtype=np.int64)
    _row_absmax(res, allowed, 0, ny, rowmax, rowarg)
    peak_norm = patch[patch.shape[0] // 2, patch.shape[1] // 2]
    n = 0
    while n < niter:
        y = np.argmax(rowmax)
        if rowmax[y] < 0 or rowmax[y] <= threshold:
            break
        x = rowarg[y]
        amp = gain * res[y, x] / peak_norm
        model[y, x] += amp
        r0, r1 = _subtract_patch(res, patch, y, x, amp)
        _row_absmax(res, allowed, r0, r1, rowmax, rowarg)
        n += 1
    return n, max(rowmax.max(), 0.0)


@njit(cache=True)
def _add_patch(img, patch, py, px, amp):
    _subtract_patch(img, patch, py, px, -amp)


@njit(cache=True)
def _pick_scale(rowmax, track_of, bias):  # pragma: no cover - compiled
    """``(scale, row)`` of the largest bias-weighted peak over the scales' tracked images (row maxima ``rowmax``)."""
    best = -1.0
    bs = 0
    by = 0
    for s in range(track_of.shape[0]):
        t = track_of[s]
        y = np.argmax(rowmax[t])
        v = rowmax[t, y] * bias[s]
        if v > best:
            best = v
            bs = s
            by = y
    return bs, by


@njit(cache=True)
def _multiscale_loop(tracked, cross, kernels, track_of, bias, psf_peak, allowed, model,
                     gain, niter, threshold):
    """Multi-scale CLEAN on tracked images (0: residual, then smoothed residuals).

    ``cross[s, t]`` is the PSF patch a unit component of scale ``s`` leaves in tracked image
    ``t``; ``track_of[s]`` is the tracked image on which scale ``s`` is searched, within
    ``allowed[t]`` (the mask, shrunk so that the scale's kernel stays inside the image).
    """
    ntrack, ny, nx = tracked.shape
    nscale = track_of.shape[0]
    rowmax = np.empty((ntrack, ny))
    rowarg = np.zeros((ntrack, ny), dtype=np.int64)
    for t in range(ntrack):
        _row_absmax(tracked[t], allowed[t], 0, ny, rowmax[t], rowarg[t])
    counts = np.zeros(nscale, dtype=np.int64)
    n = 0
    while n < niter:
        y0 = np.argmax(rowmax[0])
        if rowmax[0, y0] < 0 or rowmax[0, y0] <= threshold:
            break
        bs, by = _pick_scale(rowmax, track_of, bias)
        bx = rowarg[track_of[bs], by]
        amp = gain * tracked[track_of[bs], by, bx] / psf_peak[bs]
        _add_patch(model, kernels[bs], by, bx, amp)
        for u in range(ntrack):
            r0, r1 = _subtract_patch(tracked[u], cross[bs, u], by, bx, amp)
            _row_absmax(tracked[u], allowed[u], r0, r1, rowmax[u], rowarg[u])
        counts[bs] += 1
        n += 1
    return n, max(rowmax[0].max(), 0.0), counts


# --------------------------------------------------------------------------------------------
# helpers


def _check_images(dirty: np.ndarray, psf: np.ndarray, mask: np.ndarray | None):
    dirty = np.ascontiguousarray(dirty, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    if dirty.ndim != 2 or psf.ndim != 2:
        raise UsageError(f"Dirty image and PSF must be 2-D [y, x]; got {dirty.shape} and {psf.shape}.")
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    if not psf[cy, cx] > 0:
        raise UsageError("The PSF must peak (positively) at its centre pixel (N/2, N/2).")
    if mask is None:
        allowed = np.ones(dirty.shape, dtype=np.bool_)
    else:
        allowed = np.ascontiguousarray(mask, dtype=np.bool_)
        if allowed.shape != dirty.shape:
            raise UsageError(f"The clean mask has shape {allowed.shape}, the image {dirty.shape}.")
    return dirty, psf, allowed


def psf_support(psf: np.ndarray, cutoff: float) -> int:
    """Smallest half-width h of a box about the PSF centre outside which |psf| ≤ cutoff·peak."""
    ny, nx = psf.shape
    cy, cx = ny // 2, nx // 2
    y, x = np.indices(psf.shape)
    dist = np.maximum(np.abs(y - cy), np.abs(x - cx)).ravel()
    level = np.abs(psf).ravel() / psf[cy, cx]
    dmax = int(dist.max())
    ring_max = np.zeros(dmax + 1)
    np.maximum.at(ring_max, dist, level)
    # outside[h] = max level over rings > h
    outside = np.concatenate([np.maximum.accumulate(ring_max[::-1])[::-1][1:], [0.0]])
    return int(np.argmax(outside <= cutoff))


def _psf_patch(psf: np.ndarray, half: int, ny: int, nx: int) -> np.ndarray:
    """(2h+1)² cut-out about the PSF centre, zero-padded where the PSF ends.

    h never needs to exceed the image size: a component can affect at most N-1 pixels away.
    """
    hy = min(half, ny - 1)
    hx = min(half, nx - 1)
    pny, pnx = psf.shape
    cy, cx = pny // 2, pnx // 2
    patch = np.zeros((2 * hy + 1, 2 * hx + 1))
    sy0, sy1 = max(cy - hy, 0), min(cy + hy + 1, pny)
    sx0, sx1 = max(cx - hx, 0), min(cx + hx + 1, pnx)
    patch[sy0 - (cy - hy):sy1 - (cy - hy), sx0 - (cx - hx):sx1 - (cx - hx)] = psf[sy0:sy1, sx0:sx1]
    return patch


def _window(psf: np.ndarray, psf_cutoff: float) -> int:
    """PSF half-width the minor cycle subtracts: all of it unless ``psf_cutoff`` > 0."""
    return psf_support(psf, psf_cutoff) if psf_cutoff > 0 else max(psf.shape)


def scale_kernel(scale: float) -> np.ndarray:
    """Unit-sum multi-scale kernel of radius ``scale`` pixels (WSClean's tapered quadratic).

    ``(1 - (r/scale)²)`` times a Hann window over ``n = 2⌈scale⌉ + 1`` pixels; scale 0 is a delta.
    """
    if scale <= 0:
        return np.ones((1, 1))
    half = int(np.ceil(scale))
    n = 2 * half + 1
    y, x = np.indices((n, n), dtype=np.float64) - half
    r = np.hypot(x, y)
    hann = np.where(2 * r <= n + 1, 0.5 * (1.0 + np.cos(2.0 * np.pi * r / (n + 1))), 0.0)
    shape = np.where(r < scale, 1.0 - (r / scale) ** 2, 0.0)
    kernel = hann * shape
    return kernel / kernel.sum()


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    if kernel.shape == (1, 1):
        return image * kernel[0, 0]
    return signal.fftconvolve(image, kernel, mode="same")


@dataclass
class ScaleSetup:
    """Multi-scale CLEAN's scales that the PSF samples, with their kernels, biases and PSF peaks.

    Tracked images: 0 is the residual, then one smoothed residual per non-zero scale;
    ``track_of[s]`` is the tracked image on which scale ``s`` is searched.
    """

    scales: list[float]
    dropped: list[float]
    kernels: np.ndarray  # (S, k, k) unit-sum kernels, zero-padded to the largest
    kernel_list: list[np.ndarray]  # the same, unpadded
    track_kernels: list[np.ndarray]
    track_of: np.ndarray  # (S,) int64
    bias: np.ndarray  # (S,)
    psf_peak: np.ndarray  # (S,) (K_s * PSF)(0)
    half: int  # PSF half-width before clipping to the image
    shape: tuple[int, int]

    def cross_psfs(self, psf: np.ndarray) -> np.ndarray:
        """``(S, T, 2hy+1, 2hx+1)`` patches ``K_s * K_t * PSF``: a unit scale-``s`` component in tracked image ``t``."""
        ny, nx = self.shape
        big = _psf_patch(np.asarray(psf, np.float64), self.half, ny, nx)
        out = np.zeros((len(self.scales), len(self.track_kernels), *big.shape))
        for s, k in enumerate(self.kernel_list):
            kp = _convolve(big, k)
            for t, tk in enumerate(self.track_kernels):
                out[s, t] = _convolve(kp, tk)
        return out

    def track(self, image: np.ndarray) -> np.ndarray:
        """``(T, y, x)`` tracked images of ``image``: itself, then smoothed by each non-zero scale."""
        return np.stack([_convolve(image, tk) for tk in self.track_kernels])

    def allowed(self, allowed: np.ndarray) -> np.ndarray:
        """``(T, y, x)`` search masks, a kernel radius inside the image.

        A component whose kernel crosses the edge would be clipped in the model but not in the
        residual update, so each scale's components stay a kernel radius inside.
        """
        ny, nx = self.shape
        out = np.zeros((len(self.track_kernels), ny, nx), dtype=np.bool_)
        for t, tk in enumerate(self.track_kernels):
            r = tk.shape[0] // 2
            out[t, r:ny - r, r:nx - r] = allowed[r:ny - r, r:nx - r]
        return out


def scale_setup(psf: np.ndarray, scales: Sequence[float], scale_bias: float, psf_cutoff: float,
                ny: int, nx: int, window: int | None = None) -> ScaleSetup:
    """Kernels, biases and PSF peaks of ``scales`` for a ``(ny, nx)`` image with ``psf`` (peak 1).

    Scales whose smoothed PSF peak is below ``MIN_SCALE_RESPONSE`` of the PSF's are dropped: the
    array does not sample them, and their fluxes would be unbounded. ``window`` is the PSF
    half-width the cross PSFs keep (before the kernels widen it); by default ``psf``'s at ``psf_cutoff``.
    """
    scales = sorted({float(s) for s in scales})
    if not scales or scales[0] < 0:
        raise UsageError(f"multiscale scales must be non-negative pixel radii, e.g. [0, 4, 8, 16]; got {scales}.")
    if not 0 < scale_bias <= 1:
        raise UsageError(f"multiscale scale_bias must be in (0, 1]; got {scale_bias}.")
    psf = np.asarray(psf, np.float64)
    half = (_window(psf, psf_cutoff) if window is None else window) + 2 * int(np.ceil(scales[-1]))
    hy, hx = min(half, ny - 1), min(half, nx - 1)
    big = _psf_patch(psf, half, ny, nx)
    kernels = [scale_kernel(s) for s in scales]
    psf_peak = np.array([_convolve(big, k)[hy, hx] for k in kernels])
    usable = psf_peak > MIN_SCALE_RESPONSE * big[hy, hx]
    dropped = [s for s, ok in zip(scales, usable) if not ok]
    scales = [s for s, ok in zip(scales, usable) if ok]
    kernels = [k for k, ok in zip(kernels, usable) if ok]
    nonzero = [s for s in scales if s > 0]
    bias = np.array([scale_bias ** -(np.log2(s / nonzero[0]) if s > 0 else 0.0) for s in scales])
    track_kernels = [np.ones((1, 1))] + [k for s, k in zip(scales, kernels) if s > 0]
    track_of = np.array([0 if s == 0 else 1 + nonzero.index(s) for s in scales], dtype=np.int64)
    side = max(k.shape[0] for k in kernels)
    kstack = np.zeros((len(scales), side, side))
    for s, k in enumerate(kernels):
        o = (side - k.shape[0]) // 2
        kstack[s, o:o + k.shape[0], o:o + k.shape[1]] = k
    return ScaleSetup(scales=scales, dropped=dropped, kernels=kstack, kernel_list=kernels, track_kernels=track_kernels, track_of=track_of,
                      bias=bias, psf_peak=psf_peak[usable], half=half, shape=(ny, nx))


def _stats(n: int, peak: float, start_peak: float, **extra) -> dict:
    return {"niter": int(n), "peak": float(peak), "start_peak": float(start_peak), **extra}


# --------------------------------------------------------------------------------------------
# minor cycles


def hogbom(
    dirty: np.ndarray,
    psf: np.ndarray,
    *,
    gain: float = 0.1,
    niter: int = 1000,
    threshold: float = 0.0,
    mask: np.ndarray | None = None,
    psf_cutoff: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Hogbom CLEAN: repeatedly subtract ``gain`` × the PSF at the peak |residual|.

    Stops after ``niter`` components or when the peak |residual| (within ``mask``) is at most
    ``threshold`` (Jy/beam). ``psf_cutoff`` > 0 subtracts only the PSF box outside which the
    sidelobes are below that fraction of the peak (faster; the major cycle fixes the rest).
    Returns ``(model Jy/pixel, residual Jy/beam, stats)``.
    """
    _check_params(gain, niter, threshold)
    res, psf, allowed = _check_images(dirty, psf, mask)
    res = res.copy()
    ny, nx = res.shape
    patch = _psf_patch(psf, _window(psf, psf_cutoff), ny, nx)
    model = np.zeros_like(res)
    start = float(np.max(np.abs(res[allowed]))) if allowed.any() else 0.0
    n, peak = _hogbom_loop(res, patch, allowed, model, float(gain), int(niter), float(threshold))
    return model, res, _stats(n, peak, start)


def multiscale(
    dirty: np.ndarray,
    psf: np.ndarray,
    *,
    scales: Sequence[float] = (0, 4, 8, 16),
    gain: float = 0.1,
    niter: int = 1000,
    threshold: float = 0.0,
    scale_bias: float = 0.6,
    mask: np.ndarray | None = None,
    psf_cutoff: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Multi-scale CLEAN (Cornwell 2008, with WSClean's kernels and scale bias).

    Each scale (kernel radius in pixels, 0 = delta) has its own smoothed residual ``K_s * R``.
    The component goes to the scale and position with the largest ``|K_s * R| · bias_s``, where
    ``bias_s = scale_bias^-log2(s / first non-zero scale)`` (1 for the delta and first scale);
    its flux is ``gain · (K_s * R)(p) / (K_s * PSF)(0)``. Every smoothed residual is updated
    with the cross PSF ``K_s * K_t * PSF``. Stops on ``niter`` or when the peak |residual| is at
    most ``threshold``. Components stay a kernel radius inside the image. The cross PSFs take
    ``S·(S+1)`` patches of ``(2h+1)²`` doubles (``h`` up to N−1 without ``psf_cutoff``; the
    major cycle passes one). Returns ``(model Jy/pixel, residual Jy/beam, stats)``.
    """
    _check_params(gain, niter, threshold)
    res, psf, allowed = _check_images(dirty, psf, mask)
    ny, nx = res.shape
    setup = scale_setup(psf, scales, scale_bias, psf_cutoff, ny, nx)
    cross = setup.cross_psfs(psf)
    tracked = setup.track(res)
    allowed_t = setup.allowed(allowed)
    model = np.zeros_like(res)
    start = float(np.max(np.abs(res[allowed]))) if allowed.any() else 0.0
    n, peak, counts = _multiscale_loop(tracked, cross, setup.kernels, setup.track_of, setup.bias, setup.psf_peak,
                                       allowed_t, model, float(gain), int(niter), float(threshold))
    stats = _stats(n, peak, start, components_per_scale=dict(zip(setup.scales, (int(c) for c in counts))),
                   dropped_scales=setup.dropped)
    return model, np.ascontiguousarray(tracked[0]), stats


def _check_params(gain: float, niter: int, threshold: float) -> None:
    if not 0 < gain <= 1:
        raise UsageError(f"CLEAN gain must be in (0, 1]; got {gain}.")
    if niter < 0:
        raise UsageError(f"CLEAN niter must be >= 0; got {niter}.")
    if threshold < 0:
        raise UsageError(f"CLEAN threshold must be >= 0 Jy; got {threshold}.")


# --------------------------------------------------------------------------------------------
# major cycles


@dataclass
class CleanResult:
    """Outcome of :func:`clean`. Images are ``[y, x]``; ``beam`` is (bmaj, bmin, bpa) radians."""

    model: np.ndarray  # Jy/pixel
    residual: np.ndarray  # Jy/beam
    psf: np.ndarray  # peak 1
    beam: tuple[float, float, float]
    restored: np.ndarray  # Jy/beam
    stats: list[dict] = field(default_factory=list)  # one entry per major cycle, then the final one
    niter: int = 0
    nmajor: int = 0
    stop_reason: str = ""

    def summary(self) -> dict:
        """Plain numbers for logs and step outputs: iterations, final residual, beam (degrees)."""
        last = self.stats[-1] if self.stats else {}
        return {
            "niter": self.niter, "nmajor": self.nmajor, "stop_reason": self.stop_reason,
            "residual_peak": last.get("peak"), "residual_rms": last.get("rms"), "residual_sigma": last.get("sigma"),
            "model_flux": float(self.model.sum()),
            "bmaj_deg": float(np.degrees(self.beam[0])), "bmin_deg": float(np.degrees(self.beam[1])),
            "bpa_deg": float(np.degrees(self.beam[2])),
        }


def auto_scales(beam_px: float, npix: int, nscales: int = 4) -> list[float]:
    """Multi-scale radii: the delta, then the beam width doubling, up to 1/8 of the image."""
    first = max(2.0, float(np.round(beam_px)))
    out = [0.0]
    s = first
    while len(out) <= nscales - 1 and s <= npix / 8:
        out.append(s)
        s *= 2
    return out


def clean(
    uvw: np.ndarray,
    freq: np.ndarray,
    vis: np.ndarray,
    wgt: np.ndarray,
    npix_x: int,
    npix_y: int,
    cell_x: float,
    cell_y: float,
    *,
    algorithm: Literal["hogbom", "multiscale"] = "hogbom",
    scales: Sequence[float] | None = None,
    scale_bias: float = 0.6,
    niter: int = 1000,
    gain: float = 0.1,
    mgain: float = 0.8,
    threshold: float = 0.0,
    fthreshold: float | None = None,
    auto_threshold: float | None = None,
    nmajor: int = 10,
    mask: np.ndarray | None = None,
    psf_cutoff: float | None = None,
    beam_fit: Literal["mainlobe", "wsclean"] = "mainlobe",
    start_model: np.ndarray | None = None,
    epsilon: float = 1e-5,
    nthreads: int = 0,
) -> CleanResult:
    """Cotton–Schwab CLEAN of ``vis`` (nrow, nchan) with imaging weights ``wgt``.

    Each major cycle images the residual visibilities ``vis − predict(model)`` with ducc0, then
    a minor cycle (Hogbom or multi-scale) cleans until the peak falls to ``(1 − mgain)`` × its
    start (WSClean's ``-mgain``) or to the stopping threshold, the largest of ``threshold``
    (Jy/beam), ``fthreshold`` × the first dirty peak and ``auto_threshold`` × the robust (MAD)
    noise of the residual (WSClean's ``-auto-threshold``). It stops when the residual peak is
    below that threshold, after ``niter`` components in all, or after ``nmajor`` major cycles;
    the residual returned always comes from the visibilities. ``psf_cutoff`` (default
    ``(1 − mgain)/2``) limits the PSF patch the minor cycle subtracts to where its sidelobes
    exceed that fraction of the peak. ``beam_fit`` picks the restoring-beam fit
    (:func:`radioflow.science.beam.fit_restoring_beam`: CASA's main lobe or WSClean 3.1's).
    ``start_model`` (Jy/pixel, ``[y, x]``) continues from an earlier model, e.g. the previous
    self-calibration cycle's: it is subtracted first and the returned model includes it.
    ``fthreshold`` is relative to the peak of the first residual image.
    """
    from .major_cycle import ArrayImager, cotton_schwab

    vis = np.asarray(vis)
    wgt = np.asarray(wgt)
    if vis.shape != wgt.shape or vis.ndim != 2 or np.shape(uvw) != (vis.shape[0], 3) or vis.shape[1] != np.size(freq):
        raise UsageError(f"clean needs vis and wgt (nrow, nchan) with uvw (nrow, 3) and nchan frequencies; "
                         f"got vis {vis.shape}, wgt {wgt.shape}, uvw {np.shape(uvw)}, {np.size(freq)} frequencies.")
    good = np.isfinite(vis) & (wgt > 0)
    if not good.all():
        vis = np.where(good, vis, 0)
        wgt = np.where(good, wgt, 0)
    if start_model is not None and np.shape(start_model) != (npix_y, npix_x):
        raise UsageError(f"The start model has shape {np.shape(start_model)}; the image is {(npix_y, npix_x)} [y, x].")
    imager = ArrayImager(uvw, np.asarray(freq, np.float64), vis, wgt, npix_x, npix_y, cell_x, cell_y,
                         epsilon=epsilon, nthreads=nthreads)
    cube = cotton_schwab(imager, cell_x, cell_y, algorithm=algorithm, scales=scales, scale_bias=scale_bias,
                         niter=niter, gain=gain, mgain=mgain, threshold=threshold, fthreshold=fthreshold,
                         auto_threshold=auto_threshold, nmajor=nmajor, mask=mask, psf_cutoff=psf_cutoff,
                         beam_fit=beam_fit, start_model=None if start_model is None else np.asarray(start_model)[None])
    return cube.channel(0)


def write_clean_images(result: CleanResult, prefix: str, *, ra: float, dec: float, cell_x: float,
                       cell_y: float, freq: float, bandwidth: float, history: Sequence[str] = ()) -> dict:
    """Write ``<prefix>-model/-residual/-restored/-psf.fits`` (WSClean's names); returns the paths."""
    from .fits import write_fits_image

    common: dict[str, Any] = dict(ra=ra, dec=dec, cell_x=cell_x, cell_y=cell_y, freq=freq, bandwidth=bandwidth,
                  history=list(history))
    images = {"model": (result.model, "JY/PIXEL"), "residual": (result.residual, "JY/BEAM"),
              "restored": (result.restored, "JY/BEAM"), "psf": (result.psf, "JY/BEAM")}
    return {name: str(write_fits_image(f"{prefix}-{name}.fits", image, bunit=unit, beam=result.beam, **common))
            for name, (image, unit) in images.items()}
