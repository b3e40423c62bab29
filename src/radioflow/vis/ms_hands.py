"""A local Measurement Set's rows as plain numpy arrays: what Stokes-I imaging reads.

No xarray, dask or pandas: ``radioflow image`` on an MS imports only numpy, python-casacore
and ducc0, so small jobs start fast. Rows are taken in MS order, as WSClean takes them (no
time × baseline grid); rows of other fields or spectral windows and autocorrelations (WSClean
skips them by default) get weight 0 and are flagged. Only the two parallel hands are read
(casacore strided slices: the cross hands never leave the disk).

:class:`MSRowChunks` splits the rows into ranges under a byte budget; it is plain data, so it
pickles to Dask workers, and it is a ``ChunkSource`` of :mod:`radioflow.science.streaming`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from casacore import tables as ct

from ..errors import UsageError
from .ms import CASACORE_LOCK, check_ms
from .ms_rows import read_rows
from .ms_subtables import data_description_id, read_metadata

#: Bytes one visibility costs while imaged: two hands of complex64 data, float32 weight and
#: flag as read, then the float32 imaging weight (Stokes I is formed in place).
BYTES_PER_VISIBILITY = 2 * (8 + 4 + 1) + 4
#: Fewest rows in a chunk: below this the per-chunk gridding cost dominates, and the memory is small.
MIN_CHUNK_ROWS = 4096


@dataclass
class ParallelHands:
    """Rows of an MS: ``data``/``weight``/``flag`` ``(rows, nchan, ncorr)`` and ``uvw`` ``(rows, 3)``."""

    uvw: np.ndarray
    data: np.ndarray
    weight: np.ndarray
    flag: np.ndarray
    polarization: tuple[str, ...]
    frequency: np.ndarray
    channel_width: np.ndarray
    phase_center: tuple[float, float]
    hands: bool = True  # marks plain arrays (radioflow.science.imaging.stokes_i reads either kind)

    def band_and_centre(self) -> tuple[float, float, float, float]:
        """``(centre frequency, bandwidth, ra, dec)`` for an image's FITS header."""
        lo = float(np.min(self.frequency - self.channel_width / 2))
        hi = float(np.max(self.frequency + self.channel_width / 2))
        return 0.5 * (lo + hi), hi - lo, self.phase_center[0], self.phase_center[1]


@dataclass(frozen=True)
class MSLayout:
    """What every chunk of one MS shares: selection, hands to read, weight column, metadata."""

    path: str
    column: str
    ddid: int
    field: int
    nrow: int
    nchan: int
    corr: tuple[int, int, int] | None
    polarization: tuple[str, ...]
    weight_column: str
    frequency: tuple[float, ...]
    channel_width: tuple[float, ...]
    phase_center: tuple[float, float]


def _hand_slice(pols: list[str]) -> tuple[tuple[int, int, int] | None, tuple[str, ...]]:
    """The strided correlation slice holding a parallel-hand pair (or everything)."""
    for a, b in (("XX", "YY"), ("RR", "LL")):
        if a in pols and b in pols:
            i, j = sorted((pols.index(a), pols.index(b)))
            return (i, j, j - i), (pols[i], pols[j])
    return None, tuple(pols)


def ms_layout(path: str, column: str = "DATA", field: int = 0, spw: int = 0) -> MSLayout:
    """The layout of a local MS, read once per process while the MS is unchanged (cached)."""
    src = check_ms(path)
    try:
        stamp = os.stat(os.path.join(src, "table.dat")).st_mtime_ns
    except OSError:
        stamp = 0
    return _ms_layout(src, column, field, spw, stamp)


@lru_cache(maxsize=8)
def _ms_layout(src: str, column: str, field: int, spw: int, stamp: int) -> MSLayout:
    """:func:`ms_layout` of an MS as it was at modification time ``stamp``."""
    ddid, pol_id = data_description_id(src, spw)
    meta = read_metadata(src, field=field, spw=spw, pol_id=pol_id)
    with CASACORE_LOCK, ct.table(src, ack=False) as t:
        names = t.colnames()
        if column.upper() not in names:
            raise UsageError(f"{src} has no data column {column}; it has "
                             f"{[c for c in names if c.endswith('DATA')]} (option -data-column).")
        nrow = t.nrows()
        weight_col = "WEIGHT"
        if nrow and "WEIGHT_SPECTRUM" in names and t.iscelldefined("WEIGHT_SPECTRUM", 0):
            weight_col = "WEIGHT_SPECTRUM"
    corr, pols = _hand_slice(list(meta["polarization"]))
    return MSLayout(path=src, column=column.upper(), ddid=ddid, field=field, nrow=nrow,
                    nchan=int(meta["frequency"].size), corr=corr, polarization=pols, weight_column=weight_col,
                    frequency=tuple(float(f) for f in meta["frequency"]),
                    channel_width=tuple(float(w) for w in meta["channel_width"]),
                    phase_center=(float(meta["phase_center"][0]), float(meta["phase_center"][1])))


def read_hands(layout: MSLayout, start: int = 0, stop: int | None = None) -> ParallelHands:
    """Rows ``[start, stop)`` of the MS as :class:`ParallelHands` (rows outside the selection zeroed)."""
    stop = layout.nrow if stop is None else stop
    with CASACORE_LOCK, ct.table(layout.path, ack=False) as t:
        rows = dict(startrow=start, nrow=stop - start)
        keep = ((t.getcol("FIELD_ID", **rows) == layout.field) & (t.getcol("DATA_DESC_ID", **rows) == layout.ddid)
                & (t.getcol("ANTENNA1", **rows) != t.getcol("ANTENNA2", **rows)))
        rownrs = np.arange(start, stop)[keep]
        if rownrs.size == 0:
            return _empty(layout)
        uvw = read_rows(t, "UVW", rownrs).astype(np.float64, copy=False)
        data = read_rows(t, layout.column, rownrs, layout.corr).astype(np.complex64, copy=False)
        flag = read_rows(t, "FLAG", rownrs, layout.corr).astype(bool, copy=False)
        weight = read_rows(t, layout.weight_column, rownrs, layout.corr).astype(np.float32, copy=False)
        if "FLAG_ROW" in t.colnames():
            flag_row = read_rows(t, "FLAG_ROW", rownrs)
            if flag_row.any():
                flag[flag_row] = True
    if weight.ndim == 2:  # WEIGHT: one value per correlation, the same for every channel
        weight = np.repeat(weight[:, None, :], layout.nchan, axis=1)
    return ParallelHands(uvw=uvw, data=data, weight=weight, flag=flag, polarization=layout.polarization,
                         frequency=np.asarray(layout.frequency), channel_width=np.asarray(layout.channel_width),
                         phase_center=layout.phase_center)


def _empty(layout: MSLayout) -> ParallelHands:
    shape = (0, layout.nchan, len(layout.polarization))
    return ParallelHands(uvw=np.zeros((0, 3)), data=np.zeros(shape, np.complex64), weight=np.zeros(shape, np.float32),
                         flag=np.zeros(shape, bool), polarization=layout.polarization,
                         frequency=np.asarray(layout.frequency), channel_width=np.asarray(layout.channel_width),
                         phase_center=layout.phase_center)


@dataclass(frozen=True)
class MSRowChunks:
    """Row ranges of a local MS, each loaded with :meth:`load` (a streaming ``ChunkSource``)."""

    path: str
    column: str
    bounds: tuple[tuple[int, int], ...]
    field: int = 0
    spw: int = 0

    @classmethod
    def plan(cls, path: str, column: str = "DATA", max_bytes: int = 256 * 2**20, *, field: int = 0,
             spw: int = 0) -> MSRowChunks:
        """Split the MS into row ranges of at most ``max_bytes`` in memory while imaged, but at
        least :data:`MIN_CHUNK_ROWS` rows (each chunk costs a gridding call: FFTs and set-up)."""
        layout = ms_layout(path, column, field, spw)
        per_row = max(1, layout.nchan * BYTES_PER_VISIBILITY + 48)
        step = max(MIN_CHUNK_ROWS, int(max_bytes) // per_row)
        bounds = tuple((a, min(a + step, layout.nrow)) for a in range(0, layout.nrow, step))
        return cls(path=layout.path, column=layout.column, bounds=bounds, field=field, spw=spw)

    def __len__(self) -> int:
        return len(self.bounds)

    @property
    def layout(self) -> MSLayout:
        return ms_layout(self.path, self.column, self.field, self.spw)

    @property
    def nvis(self) -> int:
        """Visibilities (rows × channels) of the whole MS."""
        return self.layout.nrow * self.layout.nchan

    def load(self, index: int) -> ParallelHands:
        """Chunk ``index`` in memory."""
        start, stop = self.bounds[index]
        return read_hands(self.layout, start, stop)

    def band_and_centre(self) -> tuple[float, float, float, float]:
        """``(centre frequency, bandwidth, ra, dec)`` of the MS."""
        return _empty(self.layout).band_and_centre()
