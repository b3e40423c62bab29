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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal, Protocol, Sequence, TypeVar, cast

import numpy as np

from .imaging import (
    apply_weight_factors,
    density_grid,
    grid_xy,
    stokes_i,
    uvw_rows,
    vis_to_image,
    weight_factors,
)
from .stokes import WeightCombination

#: The PSF is for people and beam fits: 1e-4 accuracy is ample and grids ~40 % faster.
PSF_EPSILON = 1e-4

Weighting = Literal["natural", "uniform", "briggs"]
T = TypeVar("T")


class ChunkSource(Protocol):
    """Chunks of one visibility dataset, loaded on demand (picklable, so workers load their own)."""

    def __len__(self) -> int:
        """Number of chunks."""

    def load(self, index: int) -> Any:
        """Chunk ``index`` in memory: an ``xarray.Dataset`` (data column, WEIGHT, FLAG, UVW of some
        time steps) or a ``radioflow.vis.ms_hands.ParallelHands`` (plain numpy rows of an MS)."""


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
    combination: WeightCombination = "wsclean"
    psf_beside: bool = True  # grid the PSF in a thread beside the dirty image (faster, one more grid)
    batch_visibilities: int = 0  # local runs: gather chunks' Stokes I up to this many samples per gridding call
    accumulate_double: bool = True  # False: single-precision uv grid, half its memory, ~1e-6 of the peak


@dataclass
class StreamedImage:
    """The dirty image (Jy/beam, ``[y, x]``), its PSF (or None), the weight sum and chunk count."""

    dirty: np.ndarray
    psf: np.ndarray | None
    sum_weights: float
    chunks: int


def _chunk_arrays(source: ChunkSource, index: int, spec: GridSpec) -> tuple[np.ndarray, ...]:
    """``(uvw, freq, Stokes I vis, weight float32 with flagged samples 0)`` of one chunk."""
    ds = source.load(index)
    vis, wgt, flag = stokes_i(ds, spec.column, overwrite=True, combination=spec.combination)
    freq = ds.frequency if hasattr(ds, "hands") else ds["frequency"].values
    w = np.asarray(wgt, np.float32)
    if flag.any():
        w = np.where(flag, np.float32(0.0), w)
    return uvw_rows(ds), np.asarray(freq, np.float64), vis, w


def chunk_density(index: int, *, source: ChunkSource, spec: GridSpec) -> np.ndarray:
    """Pass 1: the weight density of one chunk on the padded half-plane grid."""
    uvw, freq, _, w = _chunk_arrays(source, index, spec)
    return density_grid(uvw, freq, w, spec.npix_x, spec.npix_y, spec.cell, spec.cell, spec.padding)


def chunk_image(index: int, *, source: ChunkSource, spec: GridSpec, factor: np.ndarray | None,
                make_psf: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Pass 2: one chunk's unnormalised dirty image (and PSF) and its sum of imaging weights."""
    return _image_arrays(*_chunk_arrays(source, index, spec), spec=spec, factor=factor, make_psf=make_psf)


def _image_arrays(uvw: np.ndarray, freq: np.ndarray, vis: np.ndarray, w: np.ndarray, *, spec: GridSpec,
                  factor: np.ndarray | None, make_psf: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Unnormalised dirty image (and PSF) of Stokes I samples and their sum of imaging weights.

    The PSF grids at :data:`PSF_EPSILON` (or ``spec.epsilon`` if coarser); with ``spec.psf_beside``
    in a thread beside the dirty image (ducc0 releases the GIL, so their serial phases overlap).
    """
    wgt = w if factor is None else apply_weight_factors(factor, uvw, freq, w, spec.cell, spec.cell)
    sum_w = float(wgt.sum(dtype=np.float64))
    nx, ny, cell = spec.npix_x, spec.npix_y, spec.cell
    if not uvw.shape[0] or not sum_w > 0:
        return np.zeros((ny, nx)), (np.zeros((ny, nx)) if make_psf else None), 0.0
    grid: dict[str, Any] = dict(nthreads=spec.nthreads, normalise=False, accumulate_double=spec.accumulate_double)
    shape = vis.shape

    def psf() -> np.ndarray:
        ones = np.ones(shape, np.complex64)
        return vis_to_image(uvw, freq, ones, wgt, nx, ny, cell, cell, epsilon=max(spec.epsilon, PSF_EPSILON), **grid)

    if make_psf and spec.psf_beside:
        with ThreadPoolExecutor(1, thread_name_prefix="psf") as pool:
            job = pool.submit(psf)
            dirty = vis_to_image(uvw, freq, vis, wgt, nx, ny, cell, cell, epsilon=spec.epsilon, **grid)
            return dirty, job.result(), sum_w
    dirty = vis_to_image(uvw, freq, vis, wgt, nx, ny, cell, cell, epsilon=spec.epsilon, **grid)
    return dirty, psf() if make_psf else None, sum_w


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, tuple):
        return tuple(_add(x, y) for x, y in zip(a, b))
    return None if a is None else a + b


def _add_into(total: Any, part: Any) -> Any:
    """``total + part`` for (tuples of) arrays and floats, adding arrays in place (no new image)."""
    if isinstance(total, tuple):
        return tuple(_add_into(a, b) for a, b in zip(total, part))
    if isinstance(total, np.ndarray):
        total += part
        return total
    return None if total is None else total + part


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
    if n == 1 and client is None:  # read once for both passes
        uvw, freq, vis, w = _chunk_arrays(source, 0, spec)
        factor1 = None
        if weighting != "natural":
            density1 = density_grid(uvw, freq, w, spec.npix_x, spec.npix_y, spec.cell, spec.cell, spec.padding)
            factor1 = weight_factors(density1, weighting, robust, rank_filter_level, rank_filter_size)
        dirty, psf, sum_w = _image_arrays(uvw, freq, vis, w, spec=spec, factor=factor1, make_psf=make_psf)
        if progress is not None:
            progress("grid", 1, 1)
        return _normalised(dirty, psf, sum_w, n)
    ranges = [] if client is None else chunk_ranges(n, len(client.scheduler_info()["workers"]))
    factor = None
    if weighting != "natural":
        if client is None:
            density = map_chunks(chunk_density, n, None, "density", progress, source=source, spec=spec)
        else:
            density = _map_sum(group_density, ranges, client, "density", progress, source=source, spec=spec)
        factor = weight_factors(cast(np.ndarray, density), weighting, robust, rank_filter_level, rank_filter_size)
    if client is None and spec.batch_visibilities > 0:
        dirty_b, psf_b, sum_b = _batched_images(source, spec, factor, make_psf, progress)
        return _normalised(dirty_b, psf_b, sum_b, n)
    if client is not None and factor is not None:
        factor = client.scatter(factor, broadcast=True)  # one copy per worker, not one per task
    if client is not None and spec.batch_visibilities > 0:
        dirty, psf, sum_w = _map_sum(group_image, ranges, client, "grid", progress, source=source, spec=spec,
                                     factor=factor, make_psf=make_psf)
    else:
        dirty, psf, sum_w = map_chunks(chunk_image, n, client, "grid", progress, source=source, spec=spec,
                                       factor=factor, make_psf=make_psf)
    return _normalised(dirty, psf, sum_w, n)


def chunk_ranges(n: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of consecutive chunk indices, one per worker (as equal as possible)."""
    groups = max(1, min(n, workers))
    edges = np.linspace(0, n, groups + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@dataclass(frozen=True)
class _ChunkRange:
    """Chunks ``start`` to ``stop`` of a source, as a source of their own (picklable)."""

    source: ChunkSource
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def load(self, index: int) -> Any:
        return self.source.load(self.start + index)


def group_density(bounds: tuple[int, int], *, source: ChunkSource, spec: GridSpec) -> np.ndarray:
    """Pass 1 on a Dask worker: the summed weight density of a run of chunks (one grid returned)."""
    return cast(np.ndarray, map_chunks(chunk_density, bounds[1] - bounds[0], None, "density", None,
                                       source=_ChunkRange(source, *bounds), spec=spec))


def group_image(bounds: tuple[int, int], *, source: ChunkSource, spec: GridSpec, factor: np.ndarray | None,
                make_psf: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Pass 2 on a Dask worker: a run of chunks gathered into gridding buffers (as a local run does),
    so a worker pays the FFTs of one gridding call per full buffer, not one per chunk; ducc0 uses
    the worker's threads (``spec.nthreads`` 0), not every core of the machine."""
    if spec.nthreads <= 0:
        spec = replace(spec, nthreads=worker_threads())
    return _batched_images(_ChunkRange(source, *bounds), spec, factor, make_psf, None)


def worker_threads() -> int:
    """Threads of the Dask worker running this task (0: all cores, outside a worker)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 0


def _batched_images(source: ChunkSource, spec: GridSpec, factor: np.ndarray | None, make_psf: bool,
                    progress: Callable[[str, int, int], None] | None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Local pass 2: consecutive chunks' Stokes I samples gathered into one buffer of
    ``spec.batch_visibilities`` samples, gridded when full.

    Each gridding call costs FFTs over every w-plane of the padded grid, so few large calls are
    much faster than one per small chunk; memory stays bounded by the buffer and one read chunk.
    A dirty image alone needs only the weighted samples ``w·V`` (8 bytes each, plus UVW per row);
    with the PSF the weights are kept beside them (12 bytes).
    """
    n = len(source)
    total: Any = None
    buf: list[np.ndarray] = []
    rows = 0
    sum_w = 0.0
    freq = np.zeros(0)
    xy: np.ndarray | None = None  # dirty-only runs sum ducc0's [x, y] images, transposed once at the end

    def grid(uvw: np.ndarray, vis: np.ndarray, wgt: np.ndarray | None, weight_sum: float) -> None:
        nonlocal total, xy
        if wgt is not None:
            part = _image_arrays(uvw, freq, vis, wgt, spec=spec, factor=None, make_psf=make_psf)
            total = part if total is None else _add_into(total, part)
        else:  # weights folded into vis (all-flagged data grid to zeros and fail later with the reason)
            image = grid_xy(uvw, freq, vis, None, spec.npix_x, spec.npix_y, spec.cell, spec.cell,
                            epsilon=spec.epsilon, nthreads=spec.nthreads, accumulate_double=spec.accumulate_double)
            if xy is None:
                xy = np.zeros(image.shape)
            xy += image
            total = (None, None, weight_sum + (0.0 if total is None else total[2]))  # psf-less: no [y, x] part

    for i in range(n):
        uvw, freq, vis, w = _chunk_arrays(source, i, spec)
        wgt = w if factor is None else apply_weight_factors(factor, uvw, freq, w, spec.cell, spec.cell)
        del w
        k, nchan = vis.shape
        cap = max(1, spec.batch_visibilities // max(nchan, 1))
        if not buf:
            buf = [np.empty((cap, 3)), np.empty((cap, nchan), np.complex64)]
            if make_psf:
                buf.append(np.empty((cap, nchan), np.float32))
        if rows + k > cap and rows:
            grid(buf[0][:rows], buf[1][:rows], buf[2][:rows] if make_psf else None, sum_w)
            rows, sum_w = 0, 0.0
        chunk_sum = float(wgt.sum(dtype=np.float64))
        if k > cap:
            if make_psf:
                grid(uvw, vis, wgt, chunk_sum)
            else:
                grid(uvw, vis * wgt, None, chunk_sum)
        else:
            buf[0][rows:rows + k] = uvw
            if make_psf:
                buf[1][rows:rows + k], buf[2][rows:rows + k] = vis, wgt
            else:
                np.multiply(vis, wgt, out=buf[1][rows:rows + k])
            rows += k
            sum_w += chunk_sum
        del uvw, vis, wgt
        if progress is not None:
            progress("grid", i + 1, n)
    if rows:
        grid(buf[0][:rows], buf[1][:rows], buf[2][:rows] if make_psf else None, sum_w)
    if total is None:
        raise ValueError("the dataset has no visibilities to image")
    if xy is not None:
        total = (np.ascontiguousarray(xy.T), None, total[2])
    return total


def _normalised(dirty: np.ndarray, psf: np.ndarray | None, sum_w: float, chunks: int) -> StreamedImage:
    if not sum_w > 0:
        raise ValueError("every visibility is flagged or has zero weight: nothing to image")
    dirty /= sum_w
    if psf is not None:
        psf /= sum_w
    return StreamedImage(dirty=dirty, psf=psf, sum_weights=sum_w, chunks=chunks)


def map_chunks(task: Callable[..., Any], n: int, client: Any, name: str,
         progress: Callable[[str, int, int], None] | None, **kwargs: Any) -> Any:
    """Map ``task(i, **kwargs)`` over the chunk indices and sum the results (in a tree on Dask)."""
    if client is None:
        total = None
        for i in range(n):
            part = task(i, **kwargs)
            total = part if total is None else _add_into(total, part)
            del part
            if progress is not None:
                progress(name, i + 1, n)
        return total
    return _map_sum(task, list(range(n)), client, name, progress, **kwargs)


def _map_sum(task: Callable[..., Any], items: list[Any], client: Any, name: str,
             progress: Callable[[str, int, int], None] | None, **kwargs: Any) -> Any:
    """``task(item, **kwargs)`` for every item on the Dask workers, summed in a tree there."""
    futures = client.map(task, items, pure=False, **kwargs)
    result = _tree_sum(futures, lambda a, b: client.submit(_add, a, b, pure=False)).result()
    if progress is not None:
        progress(name, len(items), len(items))
    return result
