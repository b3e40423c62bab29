"""``radioflow vis verify``: check a whole dataset, returning one paragraph per problem kind.

Zarr stores (datasets and delta overlays): committed, every object of the manifest present
with its recorded size and checksum. Measurement Sets: the main table and the subtables it
needs open, the required columns are complete in every row, and the ids in the main table
point at existing subtable rows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError
from . import storage
from .location import Location, as_location

#: Subtables every MS radioflow reads needs.
MS_SUBTABLES = ("ANTENNA", "DATA_DESCRIPTION", "FIELD", "POLARIZATION", "SPECTRAL_WINDOW")
#: Main-table columns that must be complete, and the subtable each id column points into.
MS_COLUMNS = ("TIME", "ANTENNA1", "ANTENNA2", "UVW", "FLAG", "DATA_DESC_ID", "FIELD_ID")
#: Bulk columns read through in row blocks (bounded memory) to find truncated storage files.
DATA_COLUMNS = ("DATA", "MODEL_DATA", "CORRECTED_DATA", "WEIGHT", "SIGMA", "WEIGHT_SPECTRUM", "FLAG")
_BLOCK_BYTES = 64 << 20
_ID_TABLES = {"ANTENNA1": "ANTENNA", "ANTENNA2": "ANTENNA", "FIELD_ID": "FIELD",
              "DATA_DESC_ID": "DATA_DESCRIPTION"}


def verify(url: str | Location) -> list[str]:
    """Problems found in the dataset at ``url`` (one paragraph each; empty when it is sound)."""
    from .io import format_of

    loc = as_location(url)
    if format_of(loc) == "zarr":
        return _verify_zarr(loc)
    from .io import local_ms_path

    return verify_ms(local_ms_path(loc), str(loc))


def _verify_zarr(loc: Location) -> list[str]:
    from .integrity import message, problems

    marker = storage.require_complete(loc)
    if not isinstance(marker.get("manifest"), dict):
        return [f"Dataset {loc} was committed without a chunk manifest (by an older radioflow), so its "
                "chunks cannot be checked; rewrite it (e.g. radioflow vis convert) to record one."]
    try:
        found = problems(loc, marker, checksums=True)
    except UsageError as exc:
        return [str(exc)]
    return [message(loc, kind, keys) for kind, keys in found.items()]


def verify_ms(path: Path, name: str) -> list[str]:
    """Problems of the local Measurement Set ``path`` (shown as ``name``)."""
    from casacore import tables as ct

    from .ms import CASACORE_LOCK

    out: list[str] = []
    rows: dict[str, int] = {}
    with CASACORE_LOCK:
        try:
            main = ct.table(str(path), ack=False)
        except RuntimeError as exc:
            return [f"Measurement Set {name}: the main table does not open: {str(exc).strip()}"]
        with main:
            broken = []
            for sub in MS_SUBTABLES:
                try:
                    with ct.table(str(path / sub), ack=False) as t:
                        rows[sub] = t.nrows()
                except RuntimeError:
                    broken.append(sub)
            if broken:
                out.append(f"Measurement Set {name}: subtable(s) {', '.join(broken)} do not open (missing "
                           "or damaged).")
            missing = [c for c in MS_COLUMNS if c not in main.colnames()]
            if missing:
                out.append(f"Measurement Set {name}: the main table lacks required column(s) {', '.join(missing)}.")
            incomplete, dangling = [], []
            for col in (c for c in MS_COLUMNS if c not in missing):
                try:
                    values = main.getcol(col)
                except RuntimeError:
                    incomplete.append(col)
                    continue
                sub = _ID_TABLES.get(col, "")
                if sub in rows and len(values) and (int(np.max(values)) >= rows[sub] or int(np.min(values)) < 0):
                    dangling.append(f"{col} (up to {int(np.max(values))}, {sub} has {rows[sub]} rows)")
            unreadable = [c for c in DATA_COLUMNS if c in main.colnames() and not _readable(main, c)]
            if incomplete:
                out.append(f"Measurement Set {name}: column(s) {', '.join(incomplete)} are not defined in "
                           "every row (a writer was interrupted or the table is damaged).")
            if unreadable:
                out.append(f"Measurement Set {name}: column(s) {', '.join(unreadable)} cannot be read to the end "
                           "(a storage file is truncated or damaged).")
            if dangling:
                out.append(f"Measurement Set {name}: row counts are inconsistent: {'; '.join(dangling)}.")
    return out


def _readable(table: object, col: str) -> bool:
    """Every row of ``col`` reads (blocks of about 64 MB)."""
    nrow = table.nrows()  # type: ignore[attr-defined]
    if nrow == 0:
        return True
    try:
        first = np.asarray(table.getcol(col, 0, 1))  # type: ignore[attr-defined]
        step = max(1, _BLOCK_BYTES // max(first.nbytes, 1))
        for start in range(0, nrow, step):
            table.getcol(col, start, min(step, nrow - start))  # type: ignore[attr-defined]
    except RuntimeError:
        return False
    return True
