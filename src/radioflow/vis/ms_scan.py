"""Scanning a Measurement Set without building a dataset: row blocks in order, and a summary.

Both open the table per call (no state kept between blocks), under radioflow's casacore lock.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import numpy as np
from casacore import tables as ct

from ..errors import UsageError
from .ms import CASACORE_LOCK, ROWS_PER_BLOCK, check_ms
from .ms_subtables import subtable_name


def iter_ms_chunks(path: str | os.PathLike[str], *, rows_per_chunk: int = ROWS_PER_BLOCK,
                   columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream the main table in row blocks: ``{"startrow", "nrow", COLUMN: array, ...}``.

    ``columns`` defaults to every column whose first cell is defined. Memory is bounded by one
    block; the table is opened per block, so consumers may take their time between blocks.
    """
    src = check_ms(path)
    if rows_per_chunk <= 0:
        raise UsageError(f"rows_per_chunk must be positive, got {rows_per_chunk}.")
    with CASACORE_LOCK, ct.table(src, ack=False) as t:
        nrow = t.nrows()
        names = list(columns) if columns is not None else [
            c for c in t.colnames() if nrow and t.iscelldefined(c, 0)]
        missing = [c for c in names if c not in t.colnames()]
    if missing:
        raise UsageError(f"{src} has no column(s) {missing}.")
    for start in range(0, nrow, rows_per_chunk):
        n = min(rows_per_chunk, nrow - start)
        with CASACORE_LOCK, ct.table(src, ack=False) as t:
            block: dict[str, Any] = {"startrow": start, "nrow": n}
            for c in names:
                block[c] = t.getcol(c, startrow=start, nrow=n)
        yield block


def ms_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON-friendly summary of an MS (sizes, frequencies, antennas, field, times, columns)."""
    src = check_ms(path)
    with CASACORE_LOCK:
        with ct.table(src, ack=False) as t:
            nrows = t.nrows()
            colnames = t.colnames()
            time = t.getcol("TIME") if nrows else np.zeros(0)
            a1 = t.getcol("ANTENNA1") if nrows else np.zeros(0, int)
            a2 = t.getcol("ANTENNA2") if nrows else np.zeros(0, int)
            interval = float(t.getcell("INTERVAL", 0)) if nrows else 0.0
            keywords = t.keywordnames()
        with ct.table(subtable_name(src, "SPECTRAL_WINDOW"), ack=False) as s:
            freqs = [np.asarray(s.getcell("CHAN_FREQ", i), np.float64) for i in range(s.nrows())]
        with ct.table(subtable_name(src, "ANTENNA"), ack=False) as s:
            antennas = [str(n) for n in s.getcol("NAME")] if s.nrows() else []
        with ct.table(subtable_name(src, "FIELD"), ack=False) as s:
            fields = [{"name": str(s.getcell("NAME", i)),
                       "phase_center": [float(v) for v in np.asarray(s.getcell("PHASE_DIR", i)).reshape(-1, 2)[0]]}
                      for i in range(s.nrows())]
        ncorr = []
        if "POLARIZATION" in keywords:
            with ct.table(subtable_name(src, "POLARIZATION"), ack=False) as s:
                ncorr = [int(s.getcell("NUM_CORR", i)) for i in range(s.nrows())]
        telescope = "unknown"
        if "OBSERVATION" in keywords:
            with ct.table(subtable_name(src, "OBSERVATION"), ack=False) as s:
                telescope = str(s.getcell("TELESCOPE_NAME", 0)) if s.nrows() else telescope
    allf = np.concatenate(freqs) if freqs else np.zeros(0)
    pairs = np.unique(np.stack([a1, a2]), axis=1).shape[1] if nrows else 0
    return {
        "path": src,
        "nrows": int(nrows),
        "ntimes": int(np.unique(time).size),
        "nbaselines": int(pairs),
        "nantennas": len(antennas),
        "antennas": antennas,
        "nspw": len(freqs),
        "nchan": [int(f.size) for f in freqs],
        "freq_min_hz": float(allf.min()) if allf.size else None,
        "freq_max_hz": float(allf.max()) if allf.size else None,
        "ncorr": ncorr,
        "telescope": telescope,
        "fields": fields,
        "phase_center": fields[0]["phase_center"] if fields else None,
        "time_range": [float(time.min() - interval / 2), float(time.max() + interval / 2)] if nrows else None,
        "integration_time": interval,
        "columns": colnames,
    }
