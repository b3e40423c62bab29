"""Streamed CLEAN: Cotton–Schwab major cycles over visibility chunks, in bounded memory.

Every major cycle predicts the model's visibilities chunk by chunk (ducc0 ``dirty2vis``),
subtracts them and grids the residual (``vis2dirty``), summing the chunks' images as
:mod:`radioflow.science.streaming` does for a dirty image; nothing holds the whole column and
nothing is written to the dataset (MODEL_DATA, when asked, is written after CLEAN by
:mod:`radioflow.science.model_column`). Locally, the first pass keeps each chunk's
Stokes-I visibilities and imaging weights (12 bytes a sample) in a scratch directory, as
WSClean's reordering does, so later cycles read those instead of the dataset; on Dask each
worker takes one run of consecutive chunks (loaded from the dataset, where the workers are),
sums their images there and returns one cube; those sum in a tree.

Output channel groups (``-channels-out N``) split the band evenly, WSClean's way; joined
(``-join-channels``) they are weighted together (MF weighting: one density over the band) and
deconvolved jointly, otherwise each group is weighted and cleaned on its own.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence, cast

import numpy as np

from ..errors import UsageError
from .imaging import apply_weight_factors, density_grid, image_to_vis, vis_to_image, weight_factors
from .major_cycle import CubeClean, cotton_schwab, mfs_combine
from .streaming import (
    ChunkSource,
    GridSpec,
    Weighting,
    _chunk_arrays,
    _ChunkRange,
    _map_sum,
    chunk_ranges,
    map_chunks,
    worker_threads,
)

Groups = tuple[tuple[int, int], ...]


def channel_groups(nchan: int, channels_out: int) -> Groups:
    """WSClean's even split of ``nchan`` channels into ``channels_out`` groups: ``[g·n/N, (g+1)·n/N)``."""
    if channels_out < 1:
        raise UsageError(f"-channels-out must be at least 1, got {channels_out}.")
    if channels_out > nchan:
        raise UsageError(f"-channels-out {channels_out} asks for more output channels than the dataset's {nchan}.")
    return tuple((g * nchan // channels_out, (g + 1) * nchan // channels_out) for g in range(channels_out))


@dataclass(frozen=True)
class Band:
    """The channels ``[lo, hi)`` one imager grids, split into output ``groups`` (absolute channel ranges)."""

    lo: int
    hi: int
    groups: Groups


def _prepared(index: int, source: ChunkSource, spec: GridSpec, band: Band, factor: np.ndarray | None,
              cache_dir: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(uvw, freq, Stokes I vis, imaging weights)`` of chunk ``index`` over the band: from the
    scratch copy when there is one, else from the dataset (and then saved there)."""
    names = ("uvw", "freq", "vis", "wgt")
    paths = [os.path.join(cache_dir, f"{index}-{n}.npy") for n in names] if cache_dir else []
    if paths and os.path.exists(paths[-1]):
        loaded = [np.load(p) for p in paths]
        return loaded[0], loaded[1], loaded[2], loaded[3]
    uvw, freq, vis, w = _chunk_arrays(source, index, spec)
    vis = np.ascontiguousarray(vis[:, band.lo:band.hi])
    freq = np.ascontiguousarray(freq[band.lo:band.hi])
    w = w[:, band.lo:band.hi]
    wgt = w.astype(np.float32) if factor is None else apply_weight_factors(factor, uvw, freq, w, spec.cell, spec.cell)
    arrays = (np.ascontiguousarray(uvw, np.float64), freq, vis, wgt)
    for path, arr in zip(paths, arrays):
        tmp = f"{path}.tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, path)
    return arrays


def _grid_groups(spec: GridSpec, band: Band, uvw: np.ndarray, freq: np.ndarray, wgt: np.ndarray,
                 vis_of: Callable[[int, slice], np.ndarray]) -> np.ndarray:
    out = []
    for g, (lo, hi) in enumerate(band.groups):
        s = slice(lo - band.lo, hi - band.lo)
        out.append(vis_to_image(uvw, freq[s], vis_of(g, s), wgt[:, s], spec.npix_x, spec.npix_y, spec.cell,
                                spec.cell, epsilon=spec.epsilon, nthreads=spec.nthreads, normalise=False))
    return np.stack(out)


def band_density(index: int, *, source: ChunkSource, spec: GridSpec, band: Band) -> np.ndarray:
    """Weighting pass: the chunk's weight density over the band's channels (MF weighting)."""
    uvw, freq, _, w = _chunk_arrays(source, index, spec)
    return density_grid(uvw, freq[band.lo:band.hi], w[:, band.lo:band.hi], spec.npix_x, spec.npix_y, spec.cell,
                        spec.cell, spec.padding)


def chunk_first(index: int, *, source: ChunkSource, spec: GridSpec, band: Band, factor: np.ndarray | None,
                cache_dir: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First pass: the chunk's unnormalised dirty and PSF cubes ``(G, y, x)`` and weight sums ``(G,)``."""
    uvw, freq, vis, wgt = _prepared(index, source, spec, band, factor, cache_dir)
    dirty = _grid_groups(spec, band, uvw, freq, wgt, lambda g, s: vis[:, s])
    ones = np.ones((vis.shape[0], 1), vis.dtype)
    psf = _grid_groups(spec, band, uvw, freq, wgt, lambda g, s: np.broadcast_to(ones, (ones.shape[0], s.stop - s.start)))
    sums = np.array([float(np.sum(wgt[:, lo - band.lo:hi - band.lo], dtype=np.float64)) for lo, hi in band.groups])
    return dirty, psf, sums


def chunk_residual(index: int, *, source: ChunkSource, spec: GridSpec, band: Band, factor: np.ndarray | None,
                   cache_dir: str | None, model: np.ndarray) -> np.ndarray:
    """Major cycle: the chunk's unnormalised image cube of ``vis − predict(model)``."""
    uvw, freq, vis, wgt = _prepared(index, source, spec, band, factor, cache_dir)

    def residual_vis(g: int, s: slice) -> np.ndarray:
        if not model[g].any():
            return vis[:, s]
        predicted = image_to_vis(model[g], uvw, freq[s], spec.npix_x, spec.npix_y, spec.cell, spec.cell,
                                 epsilon=spec.epsilon, nthreads=spec.nthreads)
        return np.subtract(vis[:, s], predicted, out=predicted)

    return _grid_groups(spec, band, uvw, freq, wgt, residual_vis)


def group_task(bounds: tuple[int, int], *, chunk_task: Callable[..., Any], source: ChunkSource, spec: GridSpec,
               **kwargs: Any) -> Any:
    """On a Dask worker: ``chunk_task`` over the chunks ``[start, stop)``, summed there, so a worker sends one
    cube per pass rather than one per chunk; ducc0 uses the worker's threads, not every core."""
    if spec.nthreads <= 0:
        spec = replace(spec, nthreads=worker_threads())
    return map_chunks(chunk_task, bounds[1] - bounds[0], None, "", None, source=_ChunkRange(source, *bounds), spec=spec,
                      **kwargs)


@dataclass
class StreamImager:
    """:class:`radioflow.science.major_cycle.Imager` over the chunks of ``source`` (locally or on a Dask ``client``)."""

    source: ChunkSource
    spec: GridSpec
    band: Band
    weighting: Weighting = "natural"
    robust: float = 0.0
    rank_filter_level: float = 3.0
    rank_filter_size: int = 16
    client: Any = None
    cache_dir: str | None = None
    progress: Callable[[str, int, int], None] | None = None
    passes: int = 0
    _first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _factor: Any = field(default=None, repr=False)

    def _map(self, task: Callable[..., Any], name: str, **kwargs: Any) -> Any:
        self.passes += 1
        if self.client is None:
            return map_chunks(task, len(self.source), None, name, self.progress, source=self.source,
                              spec=self.spec, band=self.band, **kwargs)
        ranges = chunk_ranges(len(self.source), len(self.client.scheduler_info()["workers"]))
        return _map_sum(group_task, ranges, self.client, name, self.progress, chunk_task=task, source=self.source,
                        spec=self.spec, band=self.band, **kwargs)

    def _share(self, value: Any) -> Any:
        """One copy per worker, not one per task."""
        return value if self.client is None or value is None else self.client.scatter(value, broadcast=True)

    def first(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._first is None:
            if len(self.source) == 0:
                raise UsageError("The dataset has no chunks to image.")
            if self.weighting != "natural":
                density = self._map(band_density, "density")
                self._factor = self._share(weight_factors(cast(np.ndarray, density), self.weighting, self.robust,
                                                          self.rank_filter_level, self.rank_filter_size))
            dirty, psf, sums = self._map(chunk_first, "grid", factor=self._factor, cache_dir=self._cache())
            if not np.all(sums > 0):
                raise UsageError("A channel group has no unflagged visibilities with weight > 0: nothing to image "
                                 "(use fewer -channels-out or check the flags).")
            self._first = (dirty / sums[:, None, None], psf / sums[:, None, None], sums)
        return self._first

    def _cache(self) -> str | None:
        return self.cache_dir if self.client is None else None

    def residual(self, model: np.ndarray) -> np.ndarray:
        sums = self.first()[2]
        image = self._map(chunk_residual, "major cycle", factor=self._factor, cache_dir=self._cache(),
                          model=self._share(np.ascontiguousarray(model)))
        return image / sums[:, None, None]


def clean_auto_mask(imager: Any, cell: float, auto_mask: float | None, **options: Any) -> CubeClean:
    """WSClean's ``-auto-mask``: CLEAN to ``auto_mask`` sigma, then on inside the components found
    down to the normal thresholds with the remaining iterations (no mask: one plain CLEAN)."""
    if auto_mask is None:
        return cotton_schwab(imager, cell, cell, **options)
    first = cotton_schwab(imager, cell, cell, **dict(options, auto_threshold=auto_mask))
    remaining = int(options.get("niter", 1000)) - first.niter
    final_auto = options.get("auto_threshold")
    if remaining <= 0 or (final_auto is not None and final_auto >= auto_mask):
        return first
    second = cotton_schwab(imager, cell, cell, **dict(options, niter=remaining, mask=(first.model != 0).any(axis=0),
                                                      start_model=first.model, start_residual=first.residual))
    second.dirty = first.dirty
    second.niter += first.niter
    second.nmajor += first.nmajor
    second.mfs.niter, second.mfs.nmajor = second.niter, second.nmajor
    return second


def group_frequencies(freq: np.ndarray, width: np.ndarray, groups: Groups) -> list[tuple[float, float]]:
    """``(centre, bandwidth)`` Hz of each group, edge to edge (WSClean's CRVAL3/CDELT3)."""
    out = []
    for lo, hi in groups:
        low = float(np.min(freq[lo:hi] - width[lo:hi] / 2))
        high = float(np.max(freq[lo:hi] + width[lo:hi] / 2))
        out.append((0.5 * (low + high), high - low))
    return out


def stack_groups(parts: Sequence[CubeClean], cell: float, beam_fit: str = "mainlobe") -> CubeClean:
    """Independently cleaned groups as one cube, with WSClean's MFS combination of them."""
    from .beam import fit_restoring_beam, restore
    from .deconvolve import CleanResult

    if len(parts) == 1:
        return parts[0]
    cat = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("dirty", "model", "residual", "psf",
                                                                       "restored", "weights")}
    w = cat["weights"]
    beams = [b for p in parts for b in p.beams]
    psf = mfs_combine(cat["psf"], w)
    beam = fit_restoring_beam(psf, cell, cell, method=beam_fit)
    model, residual = mfs_combine(cat["model"], w), mfs_combine(cat["residual"], w)
    niter, nmajor = sum(p.niter for p in parts), max(p.nmajor for p in parts)
    reason = ",".join(sorted({p.stop_reason for p in parts}))
    stats = [s for p in parts for s in p.stats]
    mfs = CleanResult(model=model, residual=residual, psf=psf, beam=beam, restored=restore(model, residual, beam, cell, cell),
                      stats=stats, niter=niter, nmajor=nmajor, stop_reason=reason)
    return CubeClean(beams=beams, mfs=mfs, stats=stats, niter=niter, nmajor=nmajor, stop_reason=reason, **cat)


def stream_clean(
    source: ChunkSource,
    spec: GridSpec,
    *,
    nchan: int,
    freq: np.ndarray,
    channels_out: int = 1,
    join_channels: bool = False,
    weighting: Weighting = "natural",
    robust: float = 0.0,
    rank_filter_level: float = 3.0,
    rank_filter_size: int = 16,
    auto_mask: float | None = None,
    spectral_terms: int = 0,
    client: Any = None,
    temp_dir: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **clean_options: Any,
) -> CubeClean:
    """CLEAN the chunks of ``source`` (``nchan`` channels at ``freq`` Hz) with WSClean's options.

    ``clean_options`` are :func:`radioflow.science.major_cycle.cotton_schwab`'s. The scratch copy
    of the chunks (local runs) lives in a directory under ``temp_dir`` that is removed at the end.
    """
    groups = channel_groups(nchan, channels_out)
    if spectral_terms and not join_channels:
        raise UsageError("-fit-spectral-pol needs -join-channels (WSClean fits joined components only).")
    bands = [Band(0, nchan, groups)] if join_channels or channels_out == 1 else [Band(lo, hi, ((lo, hi),))
                                                                                   for lo, hi in groups]
    scratch = tempfile.mkdtemp(prefix="radioflow-clean-", dir=temp_dir) if client is None else None
    try:
        parts = []
        for i, band in enumerate(bands):
            cache = None if scratch is None else os.path.join(scratch, str(i))
            if cache:
                os.makedirs(cache)
            imager = StreamImager(source, spec, band, weighting=weighting, robust=robust,
                                  rank_filter_level=rank_filter_level, rank_filter_size=rank_filter_size,
                                  client=client, cache_dir=cache, progress=progress)
            centres = np.array([0.5 * (freq[lo] + freq[hi - 1]) for lo, hi in band.groups])
            parts.append(clean_auto_mask(imager, spec.cell, auto_mask, freqs=centres, spectral_terms=spectral_terms,
                                         **clean_options))
            if cache:
                shutil.rmtree(cache, ignore_errors=True)
        return stack_groups(parts, spec.cell, clean_options.get("beam_fit", "mainlobe"))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
