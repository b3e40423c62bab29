"""Open and write visibility datasets by URL; the format follows the suffix.

``.zarr`` -> :mod:`radioflow.vis.zarr` (local, s3, memory); ``.ms`` -> :mod:`radioflow.vis.ms`
(python-casacore, which only reads local files: an MS on S3 is staged through a local
directory, downloaded into the column cache on read and uploaded with a completion marker on
write). A Zarr delta overlay (see :mod:`radioflow.vis.delta`) opens as the merged view of its
chain.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from ..errors import UsageError
from . import storage
from .location import Location, as_location, format_of

Target = str | Location


def _ms_module():
    from . import ms

    return ms


def local_ms_path(url: Target, **storage_options: Any) -> Path:
    """A local path holding the MS at ``url``: the path itself, or a cached copy of an S3 MS."""
    loc = as_location(url, **storage_options)
    if loc.is_local:
        path = Path(loc.path)
        if not path.exists():
            raise UsageError(f"Measurement Set {url} does not exist.")
        return path
    marker = storage.require_complete(loc)
    from .cache import ColumnCache

    cache = ColumnCache()
    target = cache.entry_dir(loc, marker["version"]) / loc.name
    if not (target / "table.dat").exists():
        tmp = target.parent / f".{target.name}.tmp"
        loc.download(tmp, folder=True)
        tmp.rename(target)
    cache.touch(target.parent)
    return target


def ms_data_columns(path: str | Path) -> list[str]:
    """The data columns (DATA, MODEL_DATA, CORRECTED_DATA) an MS has, DATA first."""
    from casacore import tables as ct

    from .ms import CASACORE_LOCK
    from .schema import DATA_COLUMNS

    with CASACORE_LOCK, ct.table(str(path), ack=False) as t:
        names = t.colnames()
    return [c for c in DATA_COLUMNS if c in names]


def ms_time_chunk(path: str | Path, target_bytes: int = 64 * 2**20) -> int:
    """Time steps per dask chunk so that one chunk of a data column holds ~``target_bytes``."""
    from casacore import tables as ct

    from .ms import CASACORE_LOCK

    with CASACORE_LOCK, ct.table(str(path), ack=False) as t:
        nrow = max(1, t.nrows())
        ntime = max(1, len(set(t.getcol("TIME", startrow=0, nrow=min(nrow, 1_000_000)).tolist())))
        shape = t.getcell("FLAG", 0).shape if t.nrows() else (1, 1)
    rows_per_time = max(1, nrow // ntime)
    per_time = rows_per_time * int(np.prod(shape)) * 8
    return max(1, target_bytes // per_time)


def open_dataset(url: Target, *, field: int | None = None, spw: int | None = None,
                 cache: bool | None = None, **storage_options: Any) -> xr.Dataset:
    """Open the visibility dataset at ``url`` lazily (one field/spw; default: the only or 0/0).

    ``cache``: read S3 Zarr chunks through the local column cache (default: on for s3 URLs).
    """
    loc = as_location(url, **storage_options)
    fmt = format_of(loc)
    if fmt == "ms":
        ms = _ms_module()
        path = local_ms_path(loc)
        kwargs: dict[str, Any] = {"columns": ms_data_columns(path), "chunks": {"time": ms_time_chunk(path)}}
        if field is not None:
            kwargs["field"] = field
        if spw is not None:
            kwargs["spw"] = spw
        return ms.read_ms(path, **kwargs)
    from . import zarr as vzarr

    attrs = vzarr.root_attrs(loc)
    if attrs.get("kind") == "delta":
        from .delta import open_delta

        return open_delta(loc, field=field, spw=spw, cache=cache)
    use_cache = loc.protocol == "s3" if cache is None else cache
    store = None
    if use_cache:
        from .cache import ColumnCache

        store = ColumnCache().store(loc)
    return vzarr.read_zarr(loc, field=field, spw=spw, store=store)


def write_dataset(ds: xr.Dataset, url: Target, *, overwrite: bool = False, chunks: Any = None,
                  subtables_from: str | None = None, **storage_options: Any) -> str:
    """Write ``ds`` to ``url`` atomically in the format of its suffix; returns the URL.

    ``subtables_from``: a local MS ``ds`` was read from, whose subtables a local MS output copies.
    """
    loc = as_location(url, **storage_options)
    fmt = format_of(loc)
    if fmt == "zarr":
        from .zarr import write_zarr

        return write_zarr(ds, loc, chunks=chunks, overwrite=overwrite)
    ms = _ms_module()
    if loc.is_local:
        return str(ms.write_ms(ds, loc.path, overwrite=overwrite, subtables_from=subtables_from))
    return upload_ms(lambda path: ms.write_ms(ds, path, overwrite=True), loc, overwrite=overwrite)


def delta_location(url: Target) -> Location:
    """Where new columns of the Zarr dataset ``url`` go by default: ``<stem>-delta.zarr`` beside it."""
    loc = as_location(url)
    name = loc.name
    return loc.with_name((name[: -len(".zarr")] if name.endswith(".zarr") else name) + "-delta.zarr")


def default_delta_url(url: Target) -> str:
    """The URL of :func:`delta_location`."""
    return delta_location(url).url


def write_columns(url: Target, columns: dict[str, np.ndarray], *, delta: Target | None = None,
                  **storage_options: Any) -> str:
    """Store new data columns of the dataset at ``url``; returns the URL of the dataset that has them.

    ``columns`` maps MS column names (``MODEL_DATA``, ``CORRECTED_DATA``, ``FLAG`` ...) to arrays
    ``(time, baseline, frequency, polarization)``. A local MS receives them as columns, in
    place. A Zarr dataset is never rewritten: they go into a delta overlay over it (``delta``,
    default :func:`default_delta_url`), created or updated as a new version; a delta receives
    them itself. Read the returned URL to see the dataset with its new columns.
    """
    from .schema import VIS_DIMS, column_variable

    loc = as_location(url, **storage_options)
    fmt = format_of(loc)
    if fmt == "ms":
        if not loc.is_local:
            raise UsageError(f"Cannot add columns to the MS {loc} in object storage (casacore writes only "
                             "local tables): convert it to Zarr (radioflow vis convert) and write a delta.")
        from .ms_columns import write_ms_columns

        write_ms_columns(loc.path, columns)
        return url if isinstance(url, str) else loc.url
    from .delta import write_delta
    from .zarr import root_attrs

    variables = {column_variable(name): xr.DataArray(np.asarray(arr), dims=VIS_DIMS) for name, arr in columns.items()}
    if delta is None and root_attrs(loc).get("kind") == "delta":
        return write_delta(variables, loc)
    target = delta_location(loc) if delta is None else as_location(delta, **loc.options)
    # A delta left over a base that has since been rewritten (e.g. a rerun partitioned again)
    # no longer lines up with it: start it afresh.
    stale = False
    if storage.read_marker(target) is not None:
        attrs = root_attrs(target)
        stale = attrs.get("parent") == loc.url and attrs.get("parent_version") != storage.version_id(loc)
    return write_delta(variables, target, parent=loc, overwrite=stale)


def upload_ms(write_local: Callable[[Path], Any], url: Target, *, overwrite: bool = False,
              **storage_options: Any) -> str:
    """Stage an MS through a local temporary directory and publish it at object-store ``url``."""
    loc = as_location(url, **storage_options)
    with tempfile.TemporaryDirectory(prefix="radioflow-ms-") as tmp:
        local = Path(tmp) / loc.name
        write_local(local)
        with storage.atomic_write(loc, fmt="ms", overwrite=overwrite) as commit:
            commit.location.upload(local)
    return commit.final_url
