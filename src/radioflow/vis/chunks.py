"""A visibility dataset as time chunks loaded on demand: the input of streamed and distributed imaging.

:class:`TimeChunks` is plain data (a URL, a column and time bounds), so it pickles to Dask
workers, each of which opens the dataset itself and loads only its own chunk: MS or Zarr, local
or S3. Chunk bounds follow the dataset's own storage chunks (MS blocks, Zarr chunks), merged up to
a byte budget, so no stored chunk is read twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xarray as xr

from ..errors import UsageError
from .schema import column_variable

#: Bytes one visibility sample costs in memory while imaged: complex64 data, float32 weight, flag.
BYTES_PER_SAMPLE = 8 + 4 + 1


@lru_cache(maxsize=8)
def _open(url: str, column: str, time_chunk: int = 0) -> xr.Dataset:
    """The dataset, lazily; an MS (stored by rows, not chunks) is read in ``time_chunk`` steps."""
    from .io import format_of, local_ms_path, open_dataset
    from .location import as_location

    loc = as_location(url)
    if format_of(loc) == "ms" and time_chunk > 0:
        from .ms import read_ms

        return read_ms(local_ms_path(loc), columns=[column], chunks={"time": time_chunk})
    return open_dataset(loc)


@dataclass(frozen=True)
class TimeChunks:
    """Time-step ranges of the dataset at ``url``, each loaded with :meth:`load`."""

    url: str
    column: str
    bounds: tuple[tuple[int, int], ...]
    time_chunk: int = 0  # MS only: time steps per read block

    @classmethod
    def plan(cls, url: str, column: str = "DATA", max_bytes: int = 256 * 2**20) -> TimeChunks:
        """Split ``url`` into chunks of at most ``max_bytes`` in memory (at least one storage chunk)."""
        from .io import format_of

        ds = _open(url, column)
        var = column_variable(column)
        if var not in ds:
            raise UsageError(f"Dataset {url} has no data column {column} (variable {var}).")
        arr = ds[var]
        per_step = int(np.prod(arr.shape[1:])) * BYTES_PER_SAMPLE + ds.sizes["baseline"] * 24
        if format_of(url) == "ms":  # rows can be read in any blocks: one chunk per budget
            steps = max(1, max_bytes // per_step)
            ntime = ds.sizes["time"]
            bounds_ms = tuple((a, min(a + steps, ntime)) for a in range(0, ntime, steps))
            return cls(url=url, column=column, bounds=bounds_ms, time_chunk=steps)
        stored = arr.chunks[0] if arr.chunks is not None else (ds.sizes["time"],)
        bounds: list[tuple[int, int]] = []
        start = stop = 0
        for steps in stored:
            if stop > start and (stop + steps - start) * per_step > max_bytes:
                bounds.append((start, stop))
                start = stop
            stop += steps
        if stop > start:
            bounds.append((start, stop))
        return cls(url=url, column=column, bounds=tuple(bounds))

    def __len__(self) -> int:
        return len(self.bounds)

    def lazy(self) -> xr.Dataset:
        """The whole dataset, lazily (coordinates and attributes for headers; nothing is read)."""
        return _open(self.url, self.column, self.time_chunk)

    def load(self, index: int) -> xr.Dataset:
        """Chunk ``index`` in memory: the data column, WEIGHT, FLAG and UVW of its time steps."""
        import dask

        start, stop = self.bounds[index]
        ds = self.lazy()
        names = [column_variable(self.column), "WEIGHT", "FLAG", "UVW"]
        # Computed right here (also inside a Dask task): one chunk, never a cluster-wide graph.
        with dask.config.set(scheduler="synchronous"):
            return ds[names].isel(time=slice(start, stop)).load()
