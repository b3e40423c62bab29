"""Out-of-core and distributed dirty imaging: grid a dataset chunk by chunk into one image.

A dirty image is linear in the visibilities and WSClean's weight density is a sum over them, so a
dataset of any size images in two streaming passes over its chunks, holding one chunk and the
grids at a time: pass 1 sums the chunks' densities (uniform/Briggs only), pass 2 grids each chunk
with its weights and sums the unnormalised images. With a Dask client the chunks are imaged on
the workers (each opens its own chunk, so data are read where the workers are) and the partial
images are summed in a tree; the result equals the in-memory image to rounding.

``science`` knows nothing of storage: a :class:`ChunkSource` (see ``radioflow.vis.chunks``) hands
out loaded chunks by index and is small and picklable, so it travels to workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, Sequence, TypeVar, cast

import numpy as np
import xarray as xr

from .imaging import (
    apply_weight_factors,
    density_grid,
    stokes_i,
    unflagged_weights,
    uvw_rows,
    vis_to_image,
    weight_factors,
)

Weighting = Literal["natural", "uniform", "briggs"]
T = TypeVar("T")


class ChunkSource(Protocol):
    """Chunks of one visibility dataset, loaded on demand (picklable, so workers load their own)."""

    def __len__(self) -> int:
        """Number of chunks."""

    def load(self, index: int) -> xr.Dataset:
        """Chunk ``index`` in memory: the data column, WEIGHT, FLAG and UVW of some time steps."""


@dataclass(frozen=True)
class GridSpec:
    """What every chunk is gridded with (small: sent to every task)."""

    npix_x: int
    npix_y: int
    cell: float
    column: str = "DATA"
    epsilon: float = 1e-5
    nthreads: int = 0
    padding: float = 1.2


@dataclass
class StreamedImage:
    """The dirty image (Jy/beam, ``[y, x]``), its PSF (or None), the weight sum and chunk count."""

    dirty: np.ndarray
    psf: np.ndarray | None
    sum_weights: float
    chunks: int


def _chunk_arrays(source: ChunkSource, index: int, spec: GridSpec) -> tuple[np.ndarray, ...]:
    ds = source.load(index)
    vis, wgt, flag = stokes_i(ds, spec.column, overwrite=True)
    return uvw_rows(ds), np.asarray(ds["frequency"].values, np.float64), vis, unflagged_weights(wgt, flag)


def chunk_density(index: int, *, source: ChunkSource, spec: GridSpec) -> np.ndarray:
    """Pass 1: the weight density of one chunk on the padded half-plane grid."""
    uvw, freq, _, w = _chunk_arrays(source, index, spec)
    return density_grid(uvw, freq, w, spec.npix_x, spec.npix_y, spec.cell, spec.cell, spec.padding)


def chunk_image(index: int, *, source: ChunkSource, spec: GridSpec, factor: np.ndarray | None,
                make_psf: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Pass 2: one chunk's unnormalised dirty image (and PSF) and its sum of imaging weights."""
    uvw, freq, vis, w = _chunk_arrays(source, index, spec)
    wgt = w.astype(np.float32) if factor is None else apply_weight_factors(factor, uvw, freq, w, spec.cell, spec.cell)
    grid: dict[str, Any] = dict(epsilon=spec.epsilon, nthreads=spec.nthreads, normalise=False)
    dirty = vis_to_image(uvw, freq, vis, wgt, spec.npix_x, spec.npix_y, spec.cell, spec.cell, **grid)
    psf = None
    if make_psf:
        ones = np.ones(vis.shape, vis.dtype)
        psf = vis_to_image(uvw, freq, ones, wgt, spec.npix_x, spec.npix_y, spec.cell, spec.cell, **grid)
    return dirty, psf, float(wgt.sum(dtype=np.float64))


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, tuple):
        return tuple(_add(x, y) for x, y in zip(a, b))
    return None if a is None else a + b


def _tree_sum(items: Sequence[T], combine: Callable[[T, T], T]) -> T:
    """Pairwise sums (a binary tree): with Dask futures/delayed, partial images meet log2(n) deep."""
    level = list(items)
    while len(level) > 1:
        nxt = [combine(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def stream_dirty_image(
    source: ChunkSource,
    spec: GridSpec,
    *,
    weighting: Weighting = "natural",
    robust: float = 0.0,
    rank_filter_level: float = 3.0,
    rank_filter_size: int = 16,
    make_psf: bool = True,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> StreamedImage:
    """Dirty image (and PSF) of every chunk of ``source``, weighted as one in-memory call would.

    ``client`` (a ``dask.distributed.Client``) images the chunks on its workers; without one they
    are imaged here one after another, so memory holds one chunk and the grids. ``progress`` is
    called as ``progress(pass_name, done, total)``.
    """
    n = len(source)
    if n == 0:
        raise ValueError("the dataset has no chunks to image")
    factor = None
    if weighting != "natural":
        density = map_chunks(chunk_density, n, client, "density", progress, source=source, spec=spec)
        factor = weight_factors(cast(np.ndarray, density), weighting, robust, rank_filter_level, rank_filter_size)
    if client is not None and factor is not None:
        factor = client.scatter(factor, broadcast=True)  # one copy per worker, not one per task
    dirty, psf, sum_w = map_chunks(chunk_image, n, client, "grid", progress, source=source, spec=spec, factor=factor,
                             make_psf=make_psf)
    if not sum_w > 0:
        raise ValueError("every visibility is flagged or has zero weight: nothing to image")
    return StreamedImage(dirty=dirty / sum_w, psf=None if psf is None else psf / sum_w, sum_weights=sum_w,
                         chunks=n)


def map_chunks(task: Callable[..., Any], n: int, client: Any, name: str,
         progress: Callable[[str, int, int], None] | None, **kwargs: Any) -> Any:
    """Map ``task(i, **kwargs)`` over the chunk indices and sum the results (in a tree on Dask)."""
    if client is None:
        total = None
        for i in range(n):
            part = task(i, **kwargs)
            total = part if total is None else _add(total, part)
            if progress is not None:
                progress(name, i + 1, n)
        return total
    futures = client.map(task, range(n), pure=False, **kwargs)
    result = _tree_sum(futures, lambda a, b: client.submit(_add, a, b, pure=False)).result()
    if progress is not None:
        progress(name, n, n)
    return result
