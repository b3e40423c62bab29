"""Measurement Set v2 <-> visibility dataset (the layout of :mod:`radioflow.vis.schema`).

Writing builds the MS in a hidden temporary sibling and renames it into place, so readers
never see a half-written MS. Rows are time-major then baseline; every column is written with
whole-block ``putcol`` calls. Reading maps rows onto the (time, baseline) grid with numpy
(missing rows come back flagged), eagerly or lazily per time chunk with dask.

python-casacore is not thread-safe: every casacore call here holds :data:`CASACORE_LOCK`.
"""
from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from casacore import tables as ct

from ..errors import UsageError
from ..processes import remove_stale_siblings
from .ms_rows import read_rows, row_grid
from .ms_subtables import (
    check_polarizations,
    copy_subtables,
    copyable_subtables,
    data_description_id,
    read_metadata,
    write_subtables,
)
from .schema import DATA_COLUMNS, UVW_DIMS, VIS_DIMS, check_dataset, column_variable

if TYPE_CHECKING:
    import xarray as xr

#: Serialises python-casacore calls across threads (dask's threaded scheduler included).
CASACORE_LOCK = threading.RLock()

#: Rows per putcol/getcol block and bytes per block of one column (whichever is smaller).
ROWS_PER_BLOCK = 100_000
BYTES_PER_BLOCK = 128 * 2**20
#: Target size of one casacore tile of a data column.
TILE_BYTES = 2**20

#: Main-table columns that rarely change between rows: stored by IncrementalStMan (as CASA does).
CONSTANT_COLUMNS = ("ARRAY_ID", "DATA_DESC_ID", "FEED1", "FEED2", "FIELD_ID", "OBSERVATION_ID",
                    "PROCESSOR_ID", "SCAN_NUMBER", "STATE_ID", "INTERVAL", "EXPOSURE")
#: Per-row scalar columns, in one StandardStMan with buckets of ROW_BUCKET_BYTES.
ROW_COLUMNS = ("TIME", "TIME_CENTROID", "ANTENNA1", "ANTENNA2", "FLAG_ROW")
ROW_BUCKET_BYTES = 2**17
_ITEMSIZE = {"complex": 8, "double": 8, "float": 4, "boolean": 1}


def _is_ms(path: Path) -> bool:
    return path.is_dir() and (path / "table.dat").is_file()


def check_ms(path: str | os.PathLike[str]) -> str:
    """Return ``path`` as a string if it is a Measurement Set, else raise a :class:`UsageError`."""
    with CASACORE_LOCK:
        open_ms(path).close()
    return str(Path(path))


# --------------------------------------------------------------------------- writing


def _tiled(name: str, value: Any, valuetype: str, cell: Sequence[int]) -> tuple[dict, dict]:
    """Column description and data-manager group spec for a tiled fixed-shape column of ``cell``.

    A tile holds whole cells (all channels and correlations) of as many rows as fit in
    :data:`TILE_BYTES` (the first axis is cut only when one cell is bigger).
    """
    item = _ITEMSIZE[valuetype]
    inner = int(np.prod(cell[1:], dtype=np.int64)) if len(cell) > 1 else 1
    first = int(min(cell[0], max(1, TILE_BYTES // (inner * item))))
    row_tile = int(max(1, TILE_BYTES // (inner * first * item)))
    group = f"Tiled{name}"
    desc = ct.makearrcoldesc(name, value, shape=list(cell), valuetype=valuetype,
                             datamanagertype="TiledColumnStMan", datamanagergroup=group)
    tile = [*reversed(cell[1:]), first, row_tile]
    return desc, {group: {"DEFAULTTILESHAPE": np.array(tile, np.int32)}}


def _create_main(path: str, nchan: int, ncorr: int, data_columns: Sequence[str],
                 subtables: bool = True) -> ct.table:
    """Create an empty MS with fixed-shape tiled array columns; UVW's frame set to J2000.

    ``subtables=False`` creates the main table alone (its subtables are copied in afterwards).

    Fixed-shape arrays (data, FLAG, WEIGHT_SPECTRUM, UVW, WEIGHT, SIGMA) are tiled and the
    per-row scalars share one StandardStMan with :data:`ROW_BUCKET_BYTES` buckets: whole-column
    reads and writes then cost no per-row overhead (casacore's default 2 kB buckets do).
    """
    descs, spec = [], {}
    arrays = [*((c, 0j, "complex", (nchan, ncorr)) for c in data_columns),
              ("FLAG", False, "boolean", (nchan, ncorr)), ("WEIGHT_SPECTRUM", 0.0, "float", (nchan, ncorr)),
              ("WEIGHT", 0.0, "float", (ncorr,)), ("SIGMA", 0.0, "float", (ncorr,))]
    for name, value, vtype, cell in arrays:
        d, s = _tiled(name, value, vtype, cell)
        descs.append(d)
        spec.update(s)
    required = ct.required_ms_desc()
    _, s = _tiled("UVW", 0.0, "double", (3,))
    descs.append(ct.makecoldesc("UVW", dict(required["UVW"], dataManagerType="TiledColumnStMan",
                                            dataManagerGroup="TiledUVW")))
    spec.update(s)
    for name in ROW_COLUMNS:
        descs.append(ct.makecoldesc(name, dict(required[name], dataManagerType="StandardStMan",
                                               dataManagerGroup="RowData")))
    spec["RowData"] = {"BUCKETSIZE": ROW_BUCKET_BYTES}
    for name in CONSTANT_COLUMNS:
        desc = dict(required[name], dataManagerType="IncrementalStMan", dataManagerGroup="ISMData")
        descs.append(ct.makecoldesc(name, desc))
    tabdesc = ct.maketabdesc(descs)
    dminfo = ct.makedminfo(tabdesc, spec)
    if subtables:
        t = ct.default_ms(path, tabdesc, dminfo)
    else:
        t = ct.table(path, {**required, **tabdesc}, dminfo=dminfo, ack=False)
        t.putinfo({"type": "Measurement Set", "subType": "", "readme": ""})
        t.putkeyword("MS_VERSION", 2.0)
    t.putcolkeyword("UVW", "MEASINFO", {"type": "uvw", "Ref": "J2000"})
    return t


def _data_variables(ds: xr.Dataset, columns: Sequence[str] | None, source: str) -> list[tuple[str, str]]:
    """(MS column, dataset variable) pairs to write; VISIBILITY -> DATA always first."""
    present = [(c, v) for c, v in DATA_COLUMNS.items() if v in ds]
    if columns is None:
        return present
    wanted = [c.upper() for c in columns]
    missing = [c for c in wanted if column_variable(c) not in ds]
    if missing:
        raise UsageError(f"{source}: cannot write column(s) {missing}: the dataset has no "
                         f"variable(s) {[column_variable(c) for c in missing]}.")
    unknown = [c for c in wanted if c not in DATA_COLUMNS]
    if unknown:
        raise UsageError(f"{source}: unknown data column(s) {unknown}; choose from {list(DATA_COLUMNS)}.")
    return [(c, v) for c, v in present if c in wanted]


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>-*`` / ``.old-<pid>-*`` siblings left by writers that died.

    Temporaries of live processes (possibly writing right now) are left alone.
    """
    return remove_stale_siblings(path, ("tmp", "old"))


def _channel_mean(weight: np.ndarray) -> np.ndarray:
    """Mean over the channels (axis 1) of ``(row, chan, corr)`` weights, summed in float64.

    Adding channel planes is 3-5x faster than ``ndarray.mean``'s strided reduction for a few
    channels; einsum is fastest for many.
    """
    nchan = weight.shape[1]
    if nchan > 32:
        return np.einsum("ijk->ik", weight, dtype=np.float64) / nchan
    acc = weight[:, 0, :].astype(np.float64)
    for c in range(1, nchan):
        acc += weight[:, c, :]
    return acc / nchan


class MSWriter:
    """Write a Measurement Set block by block, atomically.

    The MS is created (subtables filled, main table sized to ``ntime * nbaseline`` rows) in a
    hidden sibling ``.<name>.tmp-<pid>-<random>``; :meth:`write_block` fills consecutive time steps from a
    dataset slice (numpy or dask-backed), :meth:`commit` renames the finished MS into place
    (moving a pre-existing one aside first when ``overwrite``), :meth:`abort` deletes it. Use as
    a context manager: commit on success, abort on error. ``template`` only needs the
    coordinates, attributes and small variables; its big arrays are never loaded.
    """

    def __init__(self, path: str | os.PathLike[str], template: xr.Dataset, *, overwrite: bool = False,
                 columns: Sequence[str] | None = None, subtables_from: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        source = f"dataset for {self.path}"
        check_dataset(template, source=source)
        pols = [str(p) for p in template["polarization"].values]
        check_polarizations(pols, source)
        self.data_vars = _data_variables(template, columns, source)
        for col, var in self.data_vars:
            if not np.issubdtype(template[var].dtype, np.number):
                raise UsageError(f"{source}: variable {var} has dtype {template[var].dtype}; "
                                 f"{col} needs complex numbers.")
        if self.path.exists() and not overwrite:
            raise UsageError(f"{self.path} already exists; pass overwrite=True (--overwrite) to replace it.")
        if self.path.exists() and not _is_ms(self.path):
            raise UsageError(f"{self.path} exists and is not a Measurement Set; refusing to replace it.")
        self.ntime = template.sizes["time"]
        self.nbl = template.sizes["baseline"]
        self.nchan = template.sizes["frequency"]
        self.ncorr = template.sizes["polarization"]
        self.nrow = self.ntime * self.nbl
        self.interval = float(template.attrs.get("integration_time", 1.0))
        self.a1 = np.asarray(template["baseline_antenna1"].values, np.int32)
        self.a2 = np.asarray(template["baseline_antenna2"].values, np.int32)
        self.tmp = self.path.parent / f".{self.path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.path)
            with CASACORE_LOCK:
                copied = copyable_subtables(str(subtables_from)) if subtables_from is not None else None
                self._table: ct.table | None = _create_main(str(self.tmp), self.nchan, self.ncorr,
                                                            [c for c, _ in self.data_vars], copied is None)
                self._table.addrows(self.nrow)
                if copied is None:
                    write_subtables(str(self.tmp), template)
                else:
                    copy_subtables(str(subtables_from), self._table, copied, template)
        except (OSError, RuntimeError) as exc:
            self.abort()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot write Measurement Set {self.path}: {reason}.") from exc
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> "MSWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def times_per_block(self) -> int:
        """Time steps per :meth:`write_block` call that keep one block within the row/byte budget."""
        row_bytes = self.nchan * self.ncorr * 8
        rows = max(1, min(ROWS_PER_BLOCK, BYTES_PER_BLOCK // row_bytes))
        return max(1, rows // max(1, self.nbl))

    def write_rows(self, startrow: int, columns: Mapping[str, np.ndarray]) -> None:
        """Put raw MS columns (arrays with rows first) at rows ``startrow ...``."""
        if self._table is None:
            raise RuntimeError("MSWriter is closed")
        with CASACORE_LOCK:
            for name, value in columns.items():
                self._table.putcol(name, value, startrow=startrow, nrow=len(value))

    def write_block(self, block: xr.Dataset, time_start: int) -> None:
        """Write every main-table column for time steps ``time_start ... + block.sizes['time']``."""
        nt = block.sizes["time"]
        n = nt * self.nbl
        if time_start < 0 or time_start + nt > self.ntime or block.sizes["baseline"] != self.nbl:
            raise ValueError(f"block of {nt} times at {time_start} does not fit {self.ntime} x {self.nbl}")
        cell = (n, self.nchan, self.ncorr)
        flag = np.asarray(block["FLAG"].values, bool).reshape(cell)
        weight = np.asarray(block["WEIGHT"].values, np.float32).reshape(cell)
        row_weight = _channel_mean(weight).astype(np.float32)
        sigma = np.zeros_like(row_weight)
        np.divide(1.0, np.sqrt(row_weight), out=sigma, where=row_weight > 0)
        time = np.repeat(np.asarray(block["time"].values, np.float64), self.nbl)
        cols: dict[str, np.ndarray] = {}
        for col, var in self.data_vars:
            arr = np.asarray(block[var].values)
            if arr.shape != (nt, self.nbl, self.nchan, self.ncorr):
                raise ValueError(f"{var} block has shape {arr.shape}")
            cols[col] = arr.astype(np.complex64, copy=False).reshape(cell)
        cols.update({
            "FLAG": flag,
            "FLAG_ROW": np.asarray(flag.all(axis=(1, 2))),
            "WEIGHT_SPECTRUM": weight,
            "WEIGHT": row_weight,
            "SIGMA": sigma,
            "UVW": np.asarray(block["UVW"].values, np.float64).reshape(n, 3),
            "TIME": time,
            "TIME_CENTROID": time,
            "ANTENNA1": np.tile(self.a1, nt),
            "ANTENNA2": np.tile(self.a2, nt),
        })
        self.write_rows(time_start * self.nbl, cols)
        self._write_constants(time_start * self.nbl)

    def write_dataset(self, ds: xr.Dataset) -> None:
        """Write all of ``ds`` (shaped as the template), block by block: bounded memory for
        dask-backed data (a whole number of their time chunks per block, none read twice)."""
        step = self.times_per_block()
        chunk = _time_chunk(ds)
        if chunk:
            step = chunk * max(1, step // chunk)
        for t0 in range(0, self.ntime, step):
            self.write_block(ds.isel(time=slice(t0, t0 + step)).compute(), t0)

    def _write_constants(self, startrow: int) -> None:
        """The constant columns (IncrementalStMan) from ``startrow`` on: one cell each.

        IncrementalStMan keeps a value until the next row where one was put, and every block
        puts the same values, so one cell per block stands for all its rows.
        """
        values = {"INTERVAL": self.interval, "EXPOSURE": self.interval, "FEED1": 0, "FEED2": 0,
                  "DATA_DESC_ID": 0, "FIELD_ID": 0, "ARRAY_ID": 0, "OBSERVATION_ID": 0, "SCAN_NUMBER": 1,
                  "STATE_ID": -1, "PROCESSOR_ID": -1}
        if self._table is None:
            raise RuntimeError("MSWriter is closed")
        with CASACORE_LOCK:
            for name in CONSTANT_COLUMNS:
                self._table.putcell(name, startrow, values[name])

    def commit(self) -> Path:
        """Close the table and rename it into place; return the final path."""
        with CASACORE_LOCK:
            if self._table is not None:
                self._table.close()
                self._table = None
        aside = self.path.parent / f".{self.path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        moved = False
        try:
            if self.path.exists():
                os.replace(self.path, aside)
                moved = True
            os.replace(self.tmp, self.path)
        except OSError as exc:
            if moved:
                os.replace(aside, self.path)
            self.abort()
            raise UsageError(f"cannot move the new Measurement Set into {self.path}: {exc.strerror or exc}.") from exc
        if moved:
            shutil.rmtree(aside, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Drop the temporary MS; the final path is left as it was."""
        with CASACORE_LOCK:
            table = getattr(self, "_table", None)
            if table is not None:
                table.close()
            self._table = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_ms(ds: xr.Dataset, path: str | os.PathLike[str], *, overwrite: bool = False,
             columns: Sequence[str] | None = None, subtables_from: str | os.PathLike[str] | None = None) -> Path:
    """Write ``ds`` as an MSv2 at ``path`` atomically; return the path.

    ``columns`` limits the data columns written (default: DATA plus MODEL_DATA /
    CORRECTED_DATA when the dataset has them). Dask-backed datasets are computed one block of
    time steps at a time (a whole number of their time chunks, so no chunk is read twice), so
    memory stays bounded. ``subtables_from`` names the MS ``ds`` was read from: its subtables
    are copied (as DP3 does; SPECTRAL_WINDOW rewritten) when it has one field and spectral
    window, which is faster than building them; otherwise they are built from ``ds``.
    """
    with MSWriter(path, ds, overwrite=overwrite, columns=columns, subtables_from=subtables_from) as writer:
        writer.write_dataset(ds)
    return writer.path


def _time_chunk(ds: xr.Dataset) -> int:
    """Time-chunk size of the dataset's dask-backed visibility (0 when in memory)."""
    chunks = ds["VISIBILITY"].chunks
    return int(chunks[0][0]) if chunks else 0


# --------------------------------------------------------------------------- reading


#: Variables :func:`read_ms` reads besides the data columns (unless told otherwise).
EXTRA_VARIABLES = ("FLAG", "WEIGHT", "UVW")

def _read_variable(src: str, var: str, column: str, rownrs: np.ndarray, cells: np.ndarray | None,
                   shape: tuple[int, ...], corr: tuple[int, int, int] | None = None) -> np.ndarray:
    """One variable for a block of the grid: rows ``rownrs`` land on flat cells ``cells``.

    ``cells=None`` means the rows fill the block exactly in order (the common case). FLAG
    includes FLAG_ROW (a flagged row flags all its cells).
    """
    with CASACORE_LOCK, ct.table(src, ack=False) as t:
        return _read_open(t, var, column, rownrs, cells, shape, corr)


def _read_open(t: ct.table, var: str, column: str, rownrs: np.ndarray, cells: np.ndarray | None,
               shape: tuple[int, ...], corr: tuple[int, int, int] | None = None) -> np.ndarray:
    """:func:`_read_variable` from an already open main table ``t``."""
    nt, nbl = shape[:2]
    fill: bool | float
    with CASACORE_LOCK:
        data = read_rows(t, column, rownrs, corr if var != "UVW" else None)
        flag_row = read_rows(t, "FLAG_ROW", rownrs) if var == "FLAG" and "FLAG_ROW" in t.colnames() else None
    if var == "FLAG":
        data, fill = data.astype(bool, copy=False), True
        if flag_row is not None and flag_row.any():
            data[flag_row] = True
    elif var == "UVW":
        data, fill = data.astype(np.float64, copy=False), 0.0
    elif var == "WEIGHT":
        data, fill = data.astype(np.float32, copy=False), 0.0
        if data.ndim == 2:
            data = np.repeat(data[:, None, :], shape[2], axis=1)
    else:
        data, fill = data.astype(np.complex64, copy=False), 0
    if cells is None:
        return data.reshape(shape)
    out = np.full((nt * nbl, *shape[2:]), fill, dtype=data.dtype)
    out[cells] = data
    return out.reshape(shape)


def _time_chunks(chunks: int | Mapping[str, int] | None, ntime: int) -> int:
    if chunks is None:
        return ntime
    size = chunks if isinstance(chunks, int) else chunks.get("time", ntime)
    if size is None or int(size) <= 0:
        return ntime
    return int(size)


def _blocks(cells: np.ndarray, rownrs: np.ndarray, ntime: int, nbl: int,
            step: int) -> list[tuple[np.ndarray, np.ndarray | None, int]]:
    """Split the rows into time blocks of ``step``: (sorted row numbers, cells or None, ntimes).

    A duplicated grid cell keeps the row with the highest row number (the last one written).
    """
    order = np.lexsort((rownrs, cells))
    cells, rownrs = cells[order], rownrs[order]
    keep = np.append(cells[1:] != cells[:-1], True)
    cells, rownrs = cells[keep], rownrs[keep]
    bounds = np.searchsorted(cells, np.arange(0, ntime + step, step).clip(max=ntime) * nbl)
    blocks = []
    for k in range(len(bounds) - 1):
        t0 = k * step
        nt = min(step, ntime - t0)
        blk_cells = cells[bounds[k]:bounds[k + 1]] - t0 * nbl
        blk_rows = rownrs[bounds[k]:bounds[k + 1]]
        srt = np.argsort(blk_rows, kind="stable")
        blk_rows, blk_cells = blk_rows[srt], blk_cells[srt]
        exact = blk_cells.size == nt * nbl and np.array_equal(blk_cells, np.arange(blk_cells.size))
        blocks.append((blk_rows, None if exact else blk_cells, nt))
    return blocks


def _lazy_variable(src: str, var: str, column: str, blocks: list[tuple[np.ndarray, np.ndarray | None, int]],
                   tail: tuple[int, ...]) -> Any:
    """A dask array of ``var`` with one lazily-read chunk per time block."""
    import dask
    import dask.array as da

    dtype = {"FLAG": bool, "UVW": np.float64, "WEIGHT": np.float32}.get(var, np.complex64)
    parts = []
    for rows_k, cells_k, nt in blocks:
        shape = (nt, *tail)
        part = dask.delayed(_read_variable, pure=True)(src, var, column, rows_k, cells_k, shape)
        parts.append(da.from_delayed(part, shape=shape, dtype=dtype))
    return da.concatenate(parts, axis=0)


def _correlation_slice(src: str, available: list[str], wanted: list[str],
                       chunks: Any) -> tuple[tuple[int, int, int], list[str]]:
    """(first, last, step) of the wanted correlations, which must be evenly spaced in the MS."""
    unknown = [c for c in wanted if c not in available]
    if unknown or not wanted:
        raise UsageError(f"{src} has correlations {available}; cannot select {wanted}.")
    idx = [available.index(c) for c in wanted]
    step = idx[1] - idx[0] if len(idx) > 1 else 1
    if step <= 0 or idx != list(range(idx[0], idx[-1] + 1, step)) or chunks is not None:
        raise UsageError(f"Selecting correlations {wanted} of {available} in {src} needs evenly spaced, "
                         "ordered correlations and an eager read (no chunks).")
    return (idx[0], idx[-1], step), [available[i] for i in idx]


def read_ms(path: str | os.PathLike[str], *, columns: Sequence[str] = ("DATA",), field: int = 0,
            spw: int = 0, chunks: int | Mapping[str, int] | None = None,
            correlations: Sequence[str] | None = None,
            extras: Sequence[str] = EXTRA_VARIABLES) -> xr.Dataset:
    """Read one field and spectral window of an MS into the visibility dataset layout.

    ``columns`` are the data columns to load (DATA -> VISIBILITY, others keep their names);
    FLAG, WEIGHT (WEIGHT_SPECTRUM, else WEIGHT broadcast over channels) and UVW always come.
    Grid cells without a row are flagged with zero data and weight. ``chunks`` (time steps per
    chunk, or ``{"time": n, "frequency": m}``) returns dask arrays read lazily per time chunk.
    ``correlations`` (e.g. ``["XX", "YY"]``, evenly spaced in the MS) reads only those: the
    others are never read from disk (eager reads only). ``extras`` limits the other variables
    read (a subset of FLAG, WEIGHT, UVW; default all, and only then is the layout checked).
    """
    with CASACORE_LOCK:
        t = open_ms(path)
    try:
        return _read_ms(t, str(Path(path)), columns, field, spw, chunks, correlations, extras)
    finally:
        with CASACORE_LOCK:
            t.close()


def open_ms(path: str | os.PathLike[str], readonly: bool = True) -> ct.table:
    """Open the main table of the MS at ``path`` with :func:`check_ms`'s checks (caller holds the lock)."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"Measurement Set {p} does not exist.")
    if not _is_ms(p):
        raise UsageError(f"{p} is not a Measurement Set: it is not a casacore table directory (no table.dat).")
    t = ct.table(str(p), readonly=readonly, ack=False)
    missing = [c for c in ("TIME", "ANTENNA1", "ANTENNA2", "UVW") if c not in t.colnames()]
    missing += [k for k in ("ANTENNA", "SPECTRAL_WINDOW", "FIELD") if k not in t.keywordnames()]
    if missing:
        t.close()
        raise UsageError(f"{p} is a casacore table but not a Measurement Set: it lacks {', '.join(missing)}.")
    return t


def _read_ms(t: ct.table, src: str, columns: Sequence[str], field: int, spw: int,
             chunks: int | Mapping[str, int] | None, correlations: Sequence[str] | None,
             extras: Sequence[str]) -> xr.Dataset:
    unknown = [v for v in extras if v not in EXTRA_VARIABLES]
    if unknown:
        raise UsageError(f"read_ms: unknown extra variable(s) {unknown}; choose from {list(EXTRA_VARIABLES)}.")
    ddid, pol_id = data_description_id(src, spw)
    meta = read_metadata(src, field=field, spw=spw, pol_id=pol_id)
    with CASACORE_LOCK:
        colnames = t.colnames()
        wanted = [c.upper() for c in columns]
        missing = [c for c in wanted if c not in colnames]
        if missing:
            raise UsageError(f"{src} has no column(s) {missing}; it has {[c for c in colnames if c.endswith('DATA')]}.")
        grid = row_grid(t, src, field, ddid)
        rownrs = grid[0]
        if rownrs.size == 0:
            raise UsageError(f"{src} has no rows for field {field} and spectral window {spw}.")
        interval = float(t.getcell("INTERVAL", int(rownrs[0])))
        weight_col = "WEIGHT"
        if "WEIGHT_SPECTRUM" in colnames and t.iscelldefined("WEIGHT_SPECTRUM", int(rownrs[0])):
            weight_col = "WEIGHT_SPECTRUM"
    times, b1, b2, cells = grid[1:]
    ntime, nbl = times.size, b1.size
    nchan, ncorr = meta["frequency"].size, len(meta["polarization"])
    corr = None
    if correlations is not None:
        corr, meta["polarization"] = _correlation_slice(src, list(meta["polarization"]), list(correlations),
                                                        chunks)
        ncorr = len(meta["polarization"])
    blocks = _blocks(cells, rownrs, ntime, nbl, _time_chunks(chunks, ntime))

    variables = [(column_variable(c), c) for c in wanted]
    variables += [(v, c) for v, c in (("FLAG", "FLAG"), ("WEIGHT", weight_col), ("UVW", "UVW")) if v in extras]
    data_vars: dict[str, tuple[tuple[str, ...], Any]] = {}
    for var, column in variables:
        tail = (3,) if var == "UVW" else (nchan, ncorr)
        dims = UVW_DIMS if var == "UVW" else VIS_DIMS
        if chunks is None:
            rows_k, cells_k, nt = blocks[0]
            with CASACORE_LOCK:   # casacore is not thread-safe
                data_vars[var] = (dims, _read_open(t, var, column, rows_k, cells_k, (nt, nbl, *tail), corr))
            continue
        arr = _lazy_variable(src, var, column, blocks, (nbl, *tail))
        if isinstance(chunks, Mapping) and "frequency" in chunks and var != "UVW":
            arr = arr.rechunk({2: chunks["frequency"]})
        data_vars[var] = (dims, arr)

    import xarray as xr

    ds = xr.Dataset(
        data_vars={
            **data_vars,
            "ANTENNA_POSITION": (("antenna", "xyz_label"), meta["antenna_position"]),
            "DISH_DIAMETER": (("antenna",), meta["dish_diameter"]),
            "CHANNEL_WIDTH": (("frequency",), meta["channel_width"]),
        },
        coords={
            "time": times,
            "frequency": meta["frequency"],
            "polarization": meta["polarization"],
            "baseline_antenna1": (("baseline",), b1),
            "baseline_antenna2": (("baseline",), b2),
            "antenna_name": (("antenna",), meta["antenna_name"]),
            "uvw_label": ["u", "v", "w"],
            "xyz_label": ["x", "y", "z"],
        },
        attrs={
            "phase_center": meta["phase_center"],
            "field_name": meta["field_name"],
            "telescope_name": meta["telescope_name"],
            "integration_time": interval,
            "site": meta["site"],
        },
    )
    if "VISIBILITY" in ds and set(extras) == set(EXTRA_VARIABLES):
        check_dataset(ds, source=src)
    return ds
