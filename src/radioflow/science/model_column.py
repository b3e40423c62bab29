"""MODEL_DATA of a CLEAN model cube, predicted row range by row range into a local MS.

``radioflow image -niter N -update-model-required`` writes it as WSClean does for ``-pol I``:
every row of the imaged field and spectral window except autocorrelations — flagged rows and
channels included — gets the Stokes I visibilities of its output channel group's model image
(ducc0 ``dirty2vis`` at the CLEAN's gridding accuracy) in both parallel hands (XX = YY = I, or
RR = LL = I). Cross hands, autocorrelations and other fields or spectral windows keep what
MODEL_DATA held (zero in a new column). Memory holds one row range; the column is published
only when complete (:class:`radioflow.vis.ms_staged.StagedColumn`).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from ..errors import UsageError
from .imaging import PARALLEL_HANDS, image_to_vis
from .streaming import GridSpec

#: Bytes of one row range in memory: the MS cells (current and new) and one group's prediction.
MODEL_CHUNK_BYTES = 64 * 2**20
#: Fewest rows per range (each range costs one dirty2vis call per group: FFTs and set-up).
MIN_ROWS = 4096


def predict_groups(model: np.ndarray, uvw: np.ndarray, freq: np.ndarray, groups: Sequence[tuple[int, int]],
                   spec: GridSpec) -> np.ndarray:
    """Stokes I ``(rows, nchan)`` complex64: channels ``[lo, hi)`` of group ``g`` predicted from ``model[g]``."""
    out = np.zeros((uvw.shape[0], freq.size), np.complex64)
    if uvw.shape[0] == 0:
        return out
    for g, (lo, hi) in enumerate(groups):
        if model[g].any():
            out[:, lo:hi] = image_to_vis(model[g], uvw, freq[lo:hi], spec.npix_x, spec.npix_y, spec.cell,
                                         spec.cell, epsilon=spec.epsilon, nthreads=spec.nthreads)
    return out


def write_model_data(path: str | os.PathLike[str], model: np.ndarray, groups: Sequence[tuple[int, int]],
                     spec: GridSpec, *, field: int = 0, spw: int = 0, max_bytes: int = MODEL_CHUNK_BYTES,
                     progress: Callable[[str, int, int], None] | None = None) -> int:
    """Predict ``model`` (``(G, y, x)`` Jy/pixel, one plane per channel group) into the MODEL_DATA
    column of the local MS at ``path``; returns the number of rows predicted."""
    from ..vis.ms_staged import StagedColumn
    from ..vis.ms_subtables import data_description_id, read_metadata

    src = str(path)
    ddid, pol_id = data_description_id(src, spw)
    meta = read_metadata(src, field=field, spw=spw, pol_id=pol_id)
    freq = np.asarray(meta["frequency"], np.float64)
    hands = [i for i, p in enumerate(meta["polarization"]) if str(p) in PARALLEL_HANDS]
    if model.shape[0] != len(groups) or (groups and groups[-1][1] != freq.size):
        raise UsageError(f"The model has {model.shape[0]} channel groups over {groups[-1][1] if groups else 0} "
                         f"channels; {src} has {freq.size} channels in spectral window {spw}.")
    predicted = 0
    with StagedColumn(src, "MODEL_DATA") as col:
        nrow = col.nrow
        per_row = freq.size * (len(meta["polarization"]) * 8 * 2 + 16) + 64
        step = max(MIN_ROWS, max_bytes // per_row)
        for start in range(0, nrow, step):
            stop = min(start + step, nrow)
            keep = ((col.read("FIELD_ID", start, stop) == field) & (col.read("DATA_DESC_ID", start, stop) == ddid)
                    & (col.read("ANTENNA1", start, stop) != col.read("ANTENNA2", start, stop)))
            previous = col.previous(start, stop)
            cells = (np.zeros((stop - start, freq.size, len(meta["polarization"])), np.complex64)
                     if previous is None else np.asarray(previous, np.complex64))
            if keep.any():
                uvw = np.asarray(col.read("UVW", start, stop)[keep], np.float64)
                vis_i = predict_groups(model, uvw, freq, groups, spec)
                rows = np.flatnonzero(keep)
                for k in hands:
                    cells[rows, :, k] = vis_i
                predicted += rows.size
            col.put(start, cells)
            if progress is not None:
                progress("model", stop, nrow)
        col.commit()
    return predicted
