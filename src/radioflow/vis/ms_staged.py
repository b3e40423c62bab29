"""Write one MS column row range by row range, published only when every row is written.

The values go into a hidden staging column (``<NAME>_RADIOFLOW_PARTIAL``, created like DATA:
its shape, type and tiling); :meth:`StagedColumn.commit` drops the old column and renames the
staging column into place. A writer that fails or is killed part-way leaves the previous
column (or none) — never a half-written one that looks complete; its staging column is
removed on failure, or by the next writer of the same column.
"""
from __future__ import annotations

import os
from types import TracebackType

import casacore.tables as ct
import numpy as np

from ..processes import pause_point
from .ms import CASACORE_LOCK, open_ms
from .ms_columns import add_column_like

STAGING_SUFFIX = "_RADIOFLOW_PARTIAL"


class StagedColumn:
    """``with StagedColumn(ms, "MODEL_DATA") as col: col.put(start, values) ...; col.commit()``."""

    def __init__(self, path: str | os.PathLike[str], name: str, like: str = "DATA") -> None:
        self.path = str(path)
        self.name = name.upper()
        self.like = like.upper()
        self.staging = self.name + STAGING_SUFFIX
        self.keeps_previous = False
        self._t: ct.table | None = None
        self._committed = False

    def __enter__(self) -> StagedColumn:
        with CASACORE_LOCK:
            t = self._t = open_ms(self.path, readonly=False)
            if self.staging in t.colnames():
                t.removecols([self.staging])  # left by a writer that was killed
            add_column_like(t, self.staging, self.like, np.dtype(np.complex64))
            self.keeps_previous = self.name in t.colnames() and _same_cells(t, self.name, self.like)
        return self

    @property
    def nrow(self) -> int:
        """Rows of the main table."""
        assert self._t is not None, "StagedColumn used outside its with-block"
        return int(self._t.nrows())

    def read(self, column: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of any column of the MS."""
        assert self._t is not None, "StagedColumn used outside its with-block"
        with CASACORE_LOCK:
            return self._t.getcol(column, startrow=start, nrow=stop - start)

    def previous(self, start: int, stop: int) -> np.ndarray | None:
        """The column's current values of rows ``[start, stop)`` (None: no such column, or cells
        shaped unlike DATA's, which WSClean resets to zero too)."""
        return self.read(self.name, start, stop) if self.keeps_previous else None

    def put(self, start: int, values: np.ndarray) -> None:
        """Rows ``[start, start + len(values))`` of the staging column."""
        assert self._t is not None
        with CASACORE_LOCK:
            self._t.putcol(self.staging, values, startrow=start, nrow=values.shape[0])
        pause_point("staged-column")

    def commit(self) -> None:
        """Replace the column by the (completely written) staging column."""
        assert self._t is not None
        with CASACORE_LOCK:
            self._t.flush()
            if self.name in self._t.colnames():
                self._t.removecols([self.name])
            self._t.renamecol(self.staging, self.name)
            self._t.flush()
        self._committed = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        t, self._t = self._t, None
        if t is None:
            return
        with CASACORE_LOCK:
            try:
                if not self._committed and self.staging in t.colnames():
                    t.removecols([self.staging])
            finally:
                t.close()


def _same_cells(t: ct.table, name: str, like: str) -> bool:
    """Whether ``name``'s first cell is defined and shaped like ``like``'s (WSClean's test)."""
    if t.nrows() == 0 or not t.iscelldefined(name, 0):
        return False
    return tuple(np.shape(t.getcell(name, 0))) == tuple(np.shape(t.getcell(like, 0)))
