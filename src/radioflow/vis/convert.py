"""Streaming conversion between Measurement Sets and Zarr stores (both ways, any URL).

The source is opened lazily and copied in blocks of whole time steps (about ``block_bytes``
of visibilities each): while one block is written (Zarr: chunks encoded and stored
concurrently by zarr's I/O pool; MS: casacore ``putcol``), the next is read. Peak memory is a
few blocks, whatever the size of the dataset. Every field x spectral window of an MS becomes
one Zarr group; MS subtables are also copied verbatim into the store (``SUBTABLES/<name>``)
and restored when converting back, so columns the schema does not model survive the trip.
Outputs are committed atomically (see storage.py): an interrupted conversion leaves nothing
readers accept, and rerunning it replaces the debris.
"""
from __future__ import annotations

import concurrent.futures as cf
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, cast

import numpy as np
import xarray as xr

from ..errors import UsageError
from . import storage
from .io import format_of, local_ms_path, ms_data_columns, upload_ms
from .location import Location, as_location

#: Bytes of visibility-shaped data per streamed block.
BLOCK_BYTES = 16 * 2**20
SUBTABLE_GROUP = "SUBTABLES"
#: Subtables copied verbatim (those WSClean, CASA and radioflow use).
SUBTABLES = ("ANTENNA", "FEED", "FIELD", "SPECTRAL_WINDOW", "POLARIZATION", "DATA_DESCRIPTION",
             "OBSERVATION", "SOURCE", "STATE", "HISTORY", "POINTING")

Progress = Callable[[int], None]


def _malloc_trim() -> Callable[[], Any]:
    """glibc's ``malloc_trim(0)``: hand freed block buffers back to the OS (no-op elsewhere).

    Freed buffers otherwise linger in the per-thread arenas of the reader/writer threads and
    the resident size creeps up over a long conversion.
    """
    import ctypes
    import ctypes.util

    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


def _big_vars(ds: xr.Dataset) -> list[str]:
    return [str(n) for n, v in ds.data_vars.items() if "time" in v.dims]


def _per_time_bytes(ds: xr.Dataset) -> int:
    return max(1, sum(ds[n].dtype.itemsize * int(np.prod([ds.sizes[d] for d in ds[n].dims if d != "time"]))
                      for n in _big_vars(ds)))


def total_bytes(ds: xr.Dataset) -> int:
    """Bytes of the time-dependent variables of ``ds`` (what a conversion moves)."""
    return _per_time_bytes(ds) * ds.sizes["time"]


def _block_times(ds: xr.Dataset, block_bytes: int, multiple: int = 1) -> int:
    vis = max(1, ds.sizes["baseline"] * ds.sizes["frequency"] * ds.sizes["polarization"] * 8)
    steps = max(1, block_bytes // vis)
    return max(multiple, (steps // multiple) * multiple)


def _stream(ds: xr.Dataset, step: int, sink: Callable[[xr.Dataset, int], Any], progress: Progress | None) -> None:
    """Read ``ds`` in blocks of ``step`` time steps, overlapping the read of block k+1 with
    ``sink(block_k, t0)``; at most one block is being read and one written."""
    names = _big_vars(ds)
    per_time = _per_time_bytes(ds)
    starts = list(range(0, ds.sizes["time"], step))

    def generic(t0: int) -> xr.Dataset:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ds[names].isel(time=slice(t0, t0 + step)).compute(scheduler="threads")

    # the MS rows are the grid in order, or one radioflow store: read them directly
    load = _ms_block_loader(ds, names, step) or _zarr_block_loader(ds, names, step) or generic

    trim = _malloc_trim()
    with cf.ThreadPoolExecutor(1, thread_name_prefix="radioflow-read") as pool:
        nxt = pool.submit(load, starts[0]) if starts else None
        for k, t0 in enumerate(starts):
            assert nxt is not None
            block = nxt.result()
            nxt = pool.submit(load, starts[k + 1]) if k + 1 < len(starts) else None
            sink(block, t0)
            if progress is not None:
                progress(block.sizes["time"] * per_time)
            del block
            trim()


# --------------------------------------------------------------------------- MS subtables


def _as_array(values: Any) -> np.ndarray:
    """casacore returns multi-dimensional string columns as ``{"shape", "array"}``."""
    if isinstance(values, dict) and "array" in values:
        return np.array(values["array"], dtype=str).reshape(values["shape"])
    return np.asarray(values)


def _subtables_to_zarr(ms_path: str, store: Any) -> None:
    """Copy the fixed-shape columns of the MS subtables into ``SUBTABLES/<name>`` arrays."""
    import zarr
    from casacore import tables as ct

    from .ms import CASACORE_LOCK
    from .ms_subtables import subtable_name

    root = zarr.open_group(store, mode="a", zarr_format=3)
    group = root.require_group(SUBTABLE_GROUP)
    with CASACORE_LOCK, ct.table(ms_path, ack=False) as main:
        names = [k for k in main.keywordnames() if k in SUBTABLES]
    for name in names:
        with CASACORE_LOCK, ct.table(subtable_name(ms_path, name), ack=False) as t:
            nrow = t.nrows()
            sub = group.require_group(name)
            sub.attrs["nrows"] = int(nrow)
            if nrow == 0:
                continue
            for col in t.colnames():
                if t.coldatatype(col) == "record":
                    continue
                try:
                    if not t.iscelldefined(col, 0):
                        continue
                    values = _as_array(t.getcol(col))
                except RuntimeError:
                    continue  # variable-shape column: the schema writer regenerates it
                if values.dtype.kind == "U":
                    arr = sub.create_array(col, shape=values.shape, dtype=str, overwrite=True)
                    arr[...] = values.astype(object)
                elif values.dtype.kind in "biufc":
                    sub.create_array(col, data=values, overwrite=True)


def _subtables_from_zarr(src: Location, ms_path: str) -> None:
    """Restore the verbatim subtable columns where the new MS has the same rows and shapes."""
    import zarr
    from casacore import tables as ct

    from .ms import CASACORE_LOCK
    from .ms_subtables import subtable_name

    store = src.zarr_store(read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)
    subtables = root.get(SUBTABLE_GROUP)
    if not isinstance(subtables, zarr.Group):
        return
    for name, sub in subtables.groups():
        with CASACORE_LOCK, ct.table(subtable_name(ms_path, name), ack=False, readonly=False) as t:
            if t.nrows() != int(cast(int, sub.attrs.get("nrows", -1))):
                continue
            for col, arr in sub.arrays():
                if col not in t.colnames() or not t.iscelldefined(col, 0):
                    continue
                values = np.asarray(arr[...])
                if values.dtype.kind in "OT":
                    values = np.array([str(v) for v in values.ravel()]).reshape(values.shape)
                current = _as_array(t.getcol(col))
                if current.shape == values.shape:
                    t.putcol(col, values)


# --------------------------------------------------------------------------- writers


def _ms_groups(path: str) -> list[tuple[str, int, int]]:
    from .partition import source_groups

    return source_groups(path)


def _open_ms_group(path: str, field: int, spw: int, step: int) -> xr.Dataset:
    from .ms import read_ms

    ds = read_ms(path, columns=ms_data_columns(path), field=field, spw=spw, chunks={"time": step})
    ds.encoding["radioflow_ms"] = path
    return ds


def _zarr_block_loader(ds: xr.Dataset, names: Sequence[str], step: int) -> Callable[[int], xr.Dataset] | None:
    """A direct zarr slab reader for a dataset opened from one radioflow store (not a delta
    view): one output buffer per block instead of dask's per-chunk pieces."""
    source = ds.encoding.get("radioflow_zarr")
    if source is None:
        return None
    import zarr

    loc, group = source
    store = as_location(loc).zarr_store(read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = zarr.open_consolidated(store, zarr_format=3, mode="r")
    arrays: dict[str, Any] = {name: root[f"{group}/{name}"] for name in names}
    ntime = ds.sizes["time"]

    def load(t0: int) -> xr.Dataset:
        t1 = min(ntime, t0 + step)
        return xr.Dataset({name: (ds[name].dims, arrays[name][t0:t1]) for name in names},
                          coords={"time": ds["time"].values[t0:t1]})

    return load


def _ms_block_loader(ds: xr.Dataset, names: Sequence[str], step: int) -> Callable[[int], xr.Dataset] | None:
    """A direct ``getcol`` block reader when the MS rows are exactly the (time, baseline)
    grid in order (what radioflow, and most correlators, write); None otherwise."""
    path = ds.encoding.get("radioflow_ms")
    if path is None:
        return None
    from casacore import tables as ct

    from .ms import CASACORE_LOCK
    from .schema import DATA_COLUMNS

    ntime, nbl = ds.sizes["time"], ds.sizes["baseline"]
    with CASACORE_LOCK, ct.table(path, ack=False) as t:
        if t.nrows() != ntime * nbl:
            return None
        time_ = t.getcol("TIME")
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        weight_col = "WEIGHT_SPECTRUM" if ("WEIGHT_SPECTRUM" in t.colnames()
                                           and t.iscelldefined("WEIGHT_SPECTRUM", 0)) else "WEIGHT"
    regular = (np.array_equal(time_, np.repeat(ds["time"].values, nbl))
               and np.array_equal(a1, np.tile(ds["baseline_antenna1"].values, ntime))
               and np.array_equal(a2, np.tile(ds["baseline_antenna2"].values, ntime)))
    if not regular:
        return None
    column_of = {v: c for c, v in DATA_COLUMNS.items()}
    column_of.update({"FLAG": "FLAG", "UVW": "UVW", "WEIGHT": weight_col})
    nchan, ncorr = ds.sizes["frequency"], ds.sizes["polarization"]
    from .ms_rows import CASACORE_NUMPY_TYPES

    with CASACORE_LOCK, ct.table(path, ack=False) as t:
        native = {name: np.dtype(CASACORE_NUMPY_TYPES.get(t.coldatatype(column_of[name]), object)) for name in names}
    # A ring of three block buffers, filled in place by getcolnp: block k+2 is read while block
    # k+1 waits and block k is being written (the sink finishes block k before taking k+1), so
    # no buffer is overwritten early and no block pays for fresh pages (page faults cost as
    # much as the copy itself on this class of machine).
    ring: list[dict[str, np.ndarray]] = []
    count = [0]

    def buffers() -> dict[str, np.ndarray]:
        k = count[0] % 3
        count[0] += 1
        if k == len(ring):
            ring.append({})
        return ring[k]

    def load(t0: int) -> xr.Dataset:
        nt = min(step, ntime - t0)
        nrow = nt * nbl
        bufs = buffers()
        out = {}
        with CASACORE_LOCK, ct.table(path, ack=False) as t:
            for name in names:
                var = ds[name]
                col = column_of[name]
                shape = (nt, nbl, 3) if name == "UVW" else (nt, nbl, nchan, ncorr)
                cell = shape[2:]
                if native[name] == var.dtype and not (name == "WEIGHT" and col == "WEIGHT"):
                    if name not in bufs:
                        bufs[name] = np.empty((step * nbl, *cell), var.dtype)
                    data = bufs[name][:nrow]
                    t.getcolnp(col, data, startrow=t0 * nbl, nrow=nrow)
                else:
                    data = t.getcol(col, startrow=t0 * nbl, nrow=nrow)
                    if name == "WEIGHT" and data.ndim == 2:
                        data = np.repeat(data[:, None, :], nchan, axis=1)
                    data = data.astype(var.dtype, copy=False)
                out[name] = (var.dims, data.reshape(shape))
        return xr.Dataset(out, coords={"time": ds["time"].values[t0:t0 + nt]})

    return load


def _zarr_sink(store: Any, group: str) -> tuple[Callable[[xr.Dataset, int], None], Callable[[], None]]:
    """A block sink writing into the arrays of ``group``: one block is written (its variables
    concurrently) while the next is read."""
    import zarr

    arrays: dict[str, Any] = {}
    pool = cf.ThreadPoolExecutor(4, thread_name_prefix="radioflow-write")
    pending: list[cf.Future] = []

    def write(block: xr.Dataset, t0: int) -> None:
        for name in map(str, block.data_vars):
            if name not in arrays:
                # full chunks of real data: skip zarr's per-chunk "all equal to fill?" scan,
                # which runs in its event-loop thread and serialises the writers
                arr = zarr.open_array(store, path=f"{group}/{name}", mode="r+", zarr_format=3)
                arrays[name] = arr.with_config({"write_empty_chunks": True})
        t1 = t0 + block.sizes["time"]

        def put(name: str) -> None:
            arrays[name][t0:t1] = np.asarray(block[name].values)

        while pending:
            pending.pop(0).result()
        pending.extend(pool.submit(put, str(name)) for name in block.data_vars)

    def close() -> None:
        try:
            for fut in pending:
                fut.result()
        finally:
            pool.shutdown()

    return write, close


def _zarr_from_groups(groups: Sequence[tuple[str, Callable[[int], xr.Dataset]]], dst: Location, *,
                      chunks: Mapping[str, int], overwrite: bool, block_bytes: int,
                      progress: Progress | None, ms_path: str | None,
                      on_total: Callable[[int], None] | None) -> str:
    import zarr

    from .zarr import choose_chunks, finish_store, prepare

    with storage.atomic_write(dst, fmt="zarr", overwrite=overwrite) as commit:
        store = commit.location.zarr_store(read_only=False)
        zarr.open_group(store, mode="w", zarr_format=3)
        opened = []
        for name, opener in groups:
            probe = opener(1)
            zchunks = choose_chunks(probe, chunks)
            step = _block_times(probe, block_bytes, zchunks["time"])
            opened.append((name, opener(step), zchunks, step))
        if on_total is not None:
            on_total(sum(total_bytes(ds) for _, ds, _, _ in opened))
        for name, ds, zchunks, step in opened:
            template, enc = prepare(ds, zchunks)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                template.to_zarr(store, group=name, mode="w", zarr_format=3, consolidated=False,
                                 encoding=enc, compute=False)
            write, close = _zarr_sink(store, name)
            try:
                _stream(ds, step, write, progress)
            finally:
                close()
        if ms_path is not None:
            _subtables_to_zarr(ms_path, store)
        finish_store(store, [name for name, _ in groups])
    return commit.final_url


def _ms_from_dataset(ds: xr.Dataset, dst: Location, *, overwrite: bool, block_bytes: int,
                     progress: Progress | None, zarr_src: Location | None,
                     on_total: Callable[[int], None] | None) -> str:
    from .ms import MSWriter

    if on_total is not None:
        on_total(total_bytes(ds))
    step = _block_times(ds, block_bytes)

    def write_local(path: str | Path, replace: bool) -> Path:
        with MSWriter(path, ds, overwrite=replace) as writer:
            _stream(ds, step, lambda block, t0: writer.write_block(block, t0), progress)
            if zarr_src is not None:
                _subtables_from_zarr(zarr_src, str(writer.tmp))
        return writer.path

    if dst.is_local:
        return str(write_local(dst.path, overwrite))
    return upload_ms(lambda p: write_local(p, True), dst, overwrite=overwrite)


def convert(src: str | Location, dst: str | Location, *, chunks: Mapping[str, int] | str | None = None, overwrite: bool = False,
            field: int | None = None, spw: int | None = None, block_bytes: int = BLOCK_BYTES,
            progress: Progress | None = None, on_total: Callable[[int], None] | None = None,
            **storage_options: Any) -> str:
    """Convert the dataset at ``src`` to ``dst`` (MS or Zarr by suffix, local or S3), streaming.

    MS -> Zarr writes every field x spectral window (or only ``field``/``spw``) as a group;
    Zarr/MS -> MS writes one field/spw (default: the only one, else 0/0). ``chunks`` sets
    the Zarr time/frequency chunking. ``progress(nbytes)`` is called after each block and
    ``on_total(nbytes)`` once with the total. Returns the destination URL.
    """
    from .zarr import parse_chunks

    parsed = parse_chunks(dict(chunks) if isinstance(chunks, Mapping) else chunks)
    src_loc, dst_loc = as_location(src, **storage_options), as_location(dst, **storage_options)
    sfmt, dfmt = format_of(src_loc), format_of(dst_loc)
    if src_loc == dst_loc:
        raise UsageError(f"Source and destination of the conversion are the same dataset ({src}).")
    if sfmt == "ms":
        path = str(local_ms_path(src_loc))
        groups = [(n, f, s) for n, f, s in _ms_groups(path)
                  if (field is None or f == field) and (spw is None or s == spw)]
        if not groups:
            raise UsageError(f"{src} has no data for field {field} / spectral window {spw}.")
        if dfmt == "zarr":
            openers = [(n, (lambda step, f=f, s=s: _open_ms_group(path, f, s, step))) for n, f, s in groups]
            return _zarr_from_groups(openers, dst_loc, chunks=parsed, overwrite=overwrite,
                                     block_bytes=block_bytes, progress=progress, ms_path=path, on_total=on_total)
        name, f, s = groups[0]
        ds = _open_ms_group(path, f, s, _block_times(_open_ms_group(path, f, s, 1), block_bytes))
        return _ms_from_dataset(ds, dst_loc, overwrite=overwrite, block_bytes=block_bytes, progress=progress,
                                zarr_src=None, on_total=on_total)
    from .io import open_dataset

    ds = open_dataset(src_loc, field=field, spw=spw)
    if dfmt == "ms":
        return _ms_from_dataset(ds, dst_loc, overwrite=overwrite, block_bytes=block_bytes, progress=progress,
                                zarr_src=src_loc, on_total=on_total)
    from .zarr import group_name

    name = ds.encoding.get("group") or group_name(ds)
    return _zarr_from_groups([(name, lambda step: ds)], dst_loc, chunks=parsed, overwrite=overwrite,
                             block_bytes=block_bytes, progress=progress, ms_path=None,
                             on_total=on_total)

