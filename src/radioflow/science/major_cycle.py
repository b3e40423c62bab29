"""Cotton–Schwab major cycles over channel groups, whatever holds the visibilities.

An :class:`Imager` turns a model cube ``(G, y, x)`` (Jy/pixel, one plane per output channel
group) into a residual cube (Jy/beam): in memory (:class:`ArrayImager`, one ducc0 call per
group) or streamed over chunks of a dataset (``radioflow.science.stream_clean``). The loop here
is the same for both, so a streamed CLEAN equals the in-memory one to gridding accuracy.

With several groups (WSClean's ``-channels-out N -join-channels``) peaks are found on the
integrated image ``Σ w_g R_g / Σ w_g`` (``w_g`` the group's sum of imaging weights, WSClean's
``WSCIMGWG``) and each component gets one flux per group (optionally a fitted polynomial,
``-fit-spectral-pol``), for Hogbom and multi-scale CLEAN alike; thresholds and the
``-auto-threshold`` noise refer to that image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence

import numpy as np

from ..errors import UsageError
from .deconvolve import CleanResult, _check_params, auto_scales, hogbom, multiscale


class Imager(Protocol):
    """Residual images of a model, for ``G`` output channel groups."""

    def first(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dirty (G, y, x), PSF (G, y, x) peak 1, sum of imaging weights (G,))`` — computed once."""

    def residual(self, model: np.ndarray) -> np.ndarray:
        """Image ``(G, y, x)`` of the visibilities minus those predicted from ``model`` (G, y, x)."""


def _normalised(images: np.ndarray, sum_w: np.ndarray) -> np.ndarray:
    if not np.all(sum_w > 0):
        raise UsageError("A channel group has no unflagged visibilities with weight > 0: nothing to image "
                         "(use fewer -channels-out or check the flags).")
    return images / sum_w[:, None, None]


@dataclass
class ArrayImager:
    """Visibilities in memory: ``vis``/``wgt`` ``(nrow, nchan)``, split into channel ``groups`` (lo, hi)."""

    uvw: np.ndarray
    freq: np.ndarray
    vis: np.ndarray
    wgt: np.ndarray
    npix_x: int
    npix_y: int
    cell_x: float
    cell_y: float
    groups: Sequence[tuple[int, int]] = ()
    epsilon: float = 1e-5
    nthreads: int = 0
    _first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.groups:
            self.groups = ((0, int(np.size(self.freq))),)

    def _grid(self) -> dict[str, Any]:
        return dict(npix_x=self.npix_x, npix_y=self.npix_y, cell_x=self.cell_x, cell_y=self.cell_y,
                    epsilon=self.epsilon, nthreads=self.nthreads)

    def _image(self, vis_of: Any) -> np.ndarray:
        from .imaging import vis_to_image

        return np.stack([vis_to_image(self.uvw, self.freq[lo:hi], vis_of(g, lo, hi), self.wgt[:, lo:hi],
                                      **self._grid(), normalise=False) for g, (lo, hi) in enumerate(self.groups)])

    def first(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._first is None:
            sum_w = np.array([float(np.sum(self.wgt[:, lo:hi], dtype=np.float64)) for lo, hi in self.groups])
            dirty = _normalised(self._image(lambda g, lo, hi: self.vis[:, lo:hi]), sum_w)
            ones = np.ones((self.vis.shape[0], 1), self.vis.dtype)
            psf = _normalised(self._image(lambda g, lo, hi: np.broadcast_to(ones, (ones.shape[0], hi - lo))), sum_w)
            self._first = (dirty, psf, sum_w)
        return self._first

    def residual(self, model: np.ndarray) -> np.ndarray:
        from .imaging import image_to_vis

        def resid(g: int, lo: int, hi: int) -> np.ndarray:
            predicted = image_to_vis(model[g], self.uvw, self.freq[lo:hi], **self._grid())
            return np.subtract(self.vis[:, lo:hi], predicted, out=predicted)

        return _normalised(self._image(resid), self.first()[2])


def spectral_projection(freqs: np.ndarray, weights: np.ndarray, nterms: int) -> np.ndarray:
    """``(G, G)`` matrix taking per-group fluxes to their weighted least-squares polynomial fit.

    WSClean's ``-fit-spectral-pol nterms``: a polynomial of ``nterms`` terms in frequency, fitted
    with the groups' imaging weights; 0 (or ``nterms ≥ G``) leaves the fluxes as they are.
    """
    g = np.size(freqs)
    if nterms <= 0 or nterms >= g:
        return np.eye(g)
    x = np.asarray(freqs, np.float64) / float(np.average(freqs, weights=weights)) - 1.0
    basis = np.vander(x, nterms, increasing=True)
    w = np.asarray(weights, np.float64) / np.max(weights)
    return basis @ np.linalg.solve(basis.T @ (w[:, None] * basis), basis.T * w[None, :])


@dataclass
class CubeClean:
    """Outcome of :func:`cotton_schwab`: cubes ``(G, y, x)``, one restoring beam per group, and the MFS result."""

    dirty: np.ndarray
    model: np.ndarray
    residual: np.ndarray
    psf: np.ndarray
    restored: np.ndarray
    beams: list[tuple[float, float, float]]
    weights: np.ndarray
    mfs: CleanResult
    stats: list[dict] = field(default_factory=list)
    niter: int = 0
    nmajor: int = 0
    stop_reason: str = ""

    def channel(self, g: int) -> CleanResult:
        """Group ``g`` as a single-image :class:`CleanResult` (iteration counts are the cube's)."""
        return CleanResult(model=self.model[g], residual=self.residual[g], psf=self.psf[g], beam=self.beams[g],
                           restored=self.restored[g], stats=self.stats, niter=self.niter, nmajor=self.nmajor,
                           stop_reason=self.stop_reason)


def mfs_combine(cube: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """WSClean's MFS image: the groups averaged with their imaging-weight sums (``WSCIMGWG``)."""
    return cube[0] if len(cube) == 1 else np.tensordot(weights / weights.sum(), cube, axes=1)


def cotton_schwab(
    imager: Imager,
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
    start_residual: np.ndarray | None = None,
    freqs: np.ndarray | None = None,
    spectral_terms: int = 0,
) -> CubeClean:
    """Cotton–Schwab CLEAN through ``imager`` (see :func:`radioflow.science.deconvolve.clean` for the options).

    ``start_model`` (``(G, y, x)`` Jy/pixel) continues an earlier CLEAN; ``start_residual`` is its
    residual if known (saves one major cycle). ``freqs`` (group centres, Hz) and
    ``spectral_terms`` fit each joined component's fluxes with a polynomial.
    """
    from .beam import fit_restoring_beam, restore
    from .quality import mad_sigma

    _check_options(algorithm, mgain, nmajor, fthreshold, auto_threshold, gain, niter, threshold)
    dirty, psf, weights = imager.first()
    ngroup, ny, nx = dirty.shape
    wn = weights / weights.sum()
    beams = [fit_restoring_beam(p, cell_x, cell_y, method=beam_fit) for p in psf]
    mfs_psf = mfs_combine(psf, weights)
    mfs_beam = beams[0] if ngroup == 1 else fit_restoring_beam(mfs_psf, cell_x, cell_y, method=beam_fit)
    if psf_cutoff is None:
        psf_cutoff = 0.5 * (1.0 - mgain)
    if algorithm == "multiscale" and scales is None:
        scales = auto_scales(min(b[1] for b in beams) / max(cell_x, cell_y), min(nx, ny))
    proj = spectral_projection(freqs if freqs is not None else np.arange(ngroup, dtype=float), weights,
                               spectral_terms)
    if start_model is None:
        model = np.zeros((ngroup, ny, nx))
        residual = dirty
    else:
        model = np.array(start_model, dtype=np.float64).reshape(ngroup, ny, nx)
        residual = imager.residual(model) if start_residual is None else np.array(start_residual).reshape(model.shape)
    allowed = np.ones((ny, nx), bool) if mask is None else np.asarray(mask, bool)
    if allowed.shape != (ny, nx):
        raise UsageError(f"The clean mask has shape {allowed.shape}; the image is {(ny, nx)} [y, x].")
    first_peak = float(np.abs(mfs_combine(residual, weights)[allowed]).max()) if allowed.any() else 0.0
    stop_floor = max(threshold, (fthreshold or 0.0) * first_peak)
    stats: list[dict] = []
    total = 0
    reason = "nmajor"
    final = False
    for major in range(nmajor + 1):
        integrated = mfs_combine(residual, weights)
        peak = float(np.abs(integrated[allowed]).max()) if allowed.any() else 0.0
        sigma = mad_sigma(integrated)
        stop = max(stop_floor, (auto_threshold or 0.0) * sigma)
        entry = {"major": major, "peak": peak, "rms": float(np.sqrt(np.mean(integrated**2))), "sigma": sigma,
                 "stop_threshold": stop, "total_niter": total}
        stats.append(entry)
        if final:
            break
        if peak <= stop:
            reason = "threshold"
            break
        if total >= niter:
            reason = "niter"
            break
        if major == nmajor:
            break
        minor_threshold = max(stop, (1.0 - mgain) * peak)
        kwargs: dict[str, Any] = dict(gain=gain, niter=niter - total, threshold=minor_threshold, mask=mask,
                                      psf_cutoff=psf_cutoff)
        if ngroup > 1 and algorithm == "hogbom":
            from .joined_clean import joined_hogbom

            delta, minor = joined_hogbom(residual, psf, wn, proj, **kwargs)
        elif ngroup > 1:
            from .joined_clean import joined_multiscale

            delta, minor = joined_multiscale(residual, psf, wn, proj, scales=scales or (), scale_bias=scale_bias,
                                             **kwargs)
        elif algorithm == "hogbom":
            delta1, _, minor = hogbom(residual[0], psf[0], **kwargs)
            delta = delta1[None]
        else:
            delta1, _, minor = multiscale(residual[0], psf[0], scales=scales or (), scale_bias=scale_bias, **kwargs)
            delta = delta1[None]
        entry.update(niter=minor["niter"], minor_threshold=minor_threshold, minor_end_peak=minor["peak"])
        if minor["niter"] == 0:
            reason = "stalled"
            break
        total += minor["niter"]
        model += delta
        residual = imager.residual(model)
        # Like WSClean: a minor cycle that reached the stopping threshold (not just the mgain
        # level) or used up niter is the last; the major cycle above gives the final residual.
        if minor_threshold <= stop or total >= niter:
            final = True
            reason = "threshold" if minor_threshold <= stop else "niter"
    restored = np.stack([restore(m, r, b, cell_x, cell_y) for m, r, b in zip(model, residual, beams)])
    nmaj = sum(1 for s in stats if "niter" in s)
    if ngroup == 1:
        mfs = CleanResult(model=model[0], residual=residual[0], psf=psf[0], beam=beams[0], restored=restored[0],
                          stats=stats, niter=total, nmajor=nmaj, stop_reason=reason)
    else:
        mfs_model, mfs_residual = mfs_combine(model, weights), mfs_combine(residual, weights)
        mfs = CleanResult(model=mfs_model, residual=mfs_residual, psf=mfs_psf, beam=mfs_beam,
                          restored=restore(mfs_model, mfs_residual, mfs_beam, cell_x, cell_y), stats=stats,
                          niter=total, nmajor=nmaj, stop_reason=reason)
    return CubeClean(dirty=dirty, model=model, residual=residual, psf=psf, restored=restored, beams=beams,
                     weights=weights, mfs=mfs, stats=stats, niter=total, nmajor=nmaj, stop_reason=reason)


def _check_options(algorithm: str, mgain: float, nmajor: int, fthreshold: float | None,
                   auto_threshold: float | None, gain: float, niter: int, threshold: float) -> None:
    if algorithm not in ("hogbom", "multiscale"):
        raise UsageError(f"Unknown CLEAN algorithm '{algorithm}': use 'hogbom' or 'multiscale'.")
    if not 0 < mgain <= 1:
        raise UsageError(f"CLEAN mgain must be in (0, 1]; got {mgain}.")
    if nmajor < 1:
        raise UsageError(f"CLEAN nmajor must be at least 1; got {nmajor}.")
    for name, value in (("fthreshold", fthreshold), ("auto_threshold", auto_threshold)):
        if value is not None and value < 0:
            raise UsageError(f"CLEAN {name} must be >= 0 (or unset); got {value}.")
    _check_params(gain, niter, threshold)
