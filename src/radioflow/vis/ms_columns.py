"""Write data columns (MODEL_DATA, CORRECTED_DATA, FLAG, ...) back into an existing MS.

Values come in the dataset layout ``(time, baseline, frequency, correlation)`` and are mapped
to MS rows exactly as :func:`radioflow.vis.ms.read_ms` mapped them out. A missing column is
created with the DATA column's shape and tiled storage. Each column is written whole: a step
that fails part-way is simply rerun, leaving DATA untouched.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import casacore.tables as ct
import numpy as np

from ..errors import UsageError
from .ms import CASACORE_LOCK, open_ms
from .ms_rows import refresh_grid_stamp, row_grid
from .ms_subtables import data_description_id

_VALUE_TYPES = {"c": "complex", "b": "boolean", "f": "float"}


def add_column_like(t: ct.table, name: str, like: str, dtype: np.dtype) -> None:
    """Add column ``name`` of ``dtype`` with the shape and tiling of column ``like`` (caller holds the lock)."""
    desc = t.getcoldesc(like)
    desc["name"] = name
    desc["valueType"] = _VALUE_TYPES.get(np.dtype(dtype).kind, desc["valueType"])
    desc.pop("comment", None)
    dminfo = {"TYPE": "TiledColumnStMan", "NAME": _free_manager_name(t, f"Tiled_{name}"),
              "SPEC": {"DEFAULTTILESHAPE": np.array(t.getdminfo(like)["SPEC"].get("DEFAULTTILESHAPE", [4, 64, 1024]))}}
    try:
        t.addcols(ct.maketabdesc([ct.makecoldesc(name, desc)]), dminfo)
    except RuntimeError:
        t.addcols(ct.maketabdesc([ct.makecoldesc(name, desc)]))


def _free_manager_name(t: ct.table, name: str) -> str:
    """``name``, or ``name_2``, ``name_3`` ... if a data manager has it (a renamed column keeps its manager's name)."""
    taken = {str(info.get("NAME")) for info in t.getdminfo().values()}
    return next(n for n in (name if k == 1 else f"{name}_{k}" for k in range(1, len(taken) + 2)) if n not in taken)


def write_ms_columns(path: str | os.PathLike, columns: Mapping[str, np.ndarray], *, field: int = 0,
                     spw: int = 0) -> list[str]:
    """Write ``{MS column: array (time, baseline, chan, corr)}`` into the MS at ``path``."""
    src = str(Path(path))
    written = []
    with CASACORE_LOCK:
        t = open_ms(src, readonly=False)
    with CASACORE_LOCK, t:
        ddid, _ = data_description_id(src, spw)
        grid = row_grid(t, src, field, ddid)
        if len(grid) == 1:
            raise UsageError(f"{src} has no rows for field {field} and spectral window {spw}.")
        rownrs, times, b1, _, cells = grid
        # row k is grid cell k (the usual layout): the values go out as they are, no gather
        in_order = cells.size == times.size * b1.size and np.array_equal(cells, np.arange(cells.size))
        for name, values in columns.items():
            name = name.upper()
            values = np.asarray(values)
            if values.ndim != 4 or values.shape[:2] != (times.size, b1.size):
                raise UsageError(
                    f"Column {name} for {src} has shape {values.shape}; expected "
                    f"({times.size}, {b1.size}, nchan, ncorr) in the dataset layout.")
            if name not in t.colnames():
                add_column_like(t, name, "FLAG" if values.dtype == bool else "DATA", values.dtype)
            flat = values.reshape(times.size * b1.size, *values.shape[2:])
            flat = np.ascontiguousarray(flat) if in_order else flat[cells]
            contiguous = rownrs.size and rownrs[-1] - rownrs[0] + 1 == rownrs.size and np.all(np.diff(rownrs) == 1)
            if contiguous:
                t.putcol(name, flat, startrow=int(rownrs[0]), nrow=int(rownrs.size))
            else:
                sub = t.selectrows(rownrs)
                sub.putcol(name, flat)
                sub.close()
            written.append(name)
        t.flush()
        nrow = t.nrows()
    refresh_grid_stamp(src, field, ddid, nrow)
    return written
