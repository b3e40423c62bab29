"""Search results as an ObsCore VOTable (astropy): typed columns with ObsCore units and UCDs."""
from __future__ import annotations

from typing import Any

import numpy as np

from .catalogue import OBSCORE_COLUMNS

#: ObsCore 1.1 column -> (numpy kind, unit, UCD); strings have kind "U".
_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "dataproduct_type": ("U", None, "meta.code.class"), "calib_level": ("i", None, "meta.code;obs.calib"),
    "obs_collection": ("U", None, "meta.id"), "obs_id": ("U", None, "meta.id"),
    "obs_publisher_did": ("U", None, "meta.ref.ivoid"), "target_name": ("U", None, "meta.id;src"),
    "s_ra": ("f", "deg", "pos.eq.ra"), "s_dec": ("f", "deg", "pos.eq.dec"), "s_fov": ("f", "deg", "phys.angSize;instr.fov"),
    "s_region": ("U", None, "pos.outline;obs.field"), "s_resolution": ("f", "arcsec", "pos.angResolution"),
    "s_xel1": ("i", None, "meta.number"), "s_xel2": ("i", None, "meta.number"),
    "s_pixel_scale": ("f", "arcsec", "phys.angSize;instr.pixel"),
    "t_min": ("f", "d", "time.start;obs.exposure"), "t_max": ("f", "d", "time.end;obs.exposure"),
    "t_exptime": ("f", "s", "time.duration;obs.exposure"), "t_resolution": ("f", "s", "time.resolution"),
    "t_xel": ("i", None, "meta.number"), "em_min": ("f", "m", "em.wl;stat.min"), "em_max": ("f", "m", "em.wl;stat.max"),
    "em_res_power": ("f", None, "spect.resolution"), "em_xel": ("i", None, "meta.number"),
    "em_ucd": ("U", None, "meta.ucd"), "o_ucd": ("U", None, "meta.ucd"), "pol_states": ("U", None, "meta.code;phys.polarization"),
    "pol_xel": ("i", None, "meta.number"), "facility_name": ("U", None, "meta.id;instr.tel"),
    "instrument_name": ("U", None, "meta.id;instr"), "access_url": ("U", None, "meta.ref.url"),
    "access_format": ("U", None, "meta.code.mime"), "access_estsize": ("i", "kbyte", "phys.size;meta.file"),
}


def obscore_table(rows: list[dict[str, Any]]) -> Any:
    """An astropy Table of the ObsCore columns (+ ``did``, ``distance``); missing values masked."""
    from astropy.table import MaskedColumn, Table

    table = Table()
    names = ["did", *OBSCORE_COLUMNS] + (["distance"] if rows and "distance" in rows[0] else [])
    for name in names:
        kind, unit, ucd = _COLUMNS.get(name, ("U", None, "meta.id" if name == "did" else "pos.angDistance"))
        if name == "distance":
            kind, unit = "f", "deg"
        values = [r.get(name) for r in rows]
        mask = [v is None for v in values]
        if kind == "U":
            data = np.array(["" if v is None else str(v) for v in values], dtype=str)
        elif kind == "i":
            data = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
        else:
            data = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        col = MaskedColumn(data, name=name, mask=mask, unit=unit)
        col.meta["ucd"] = ucd
        table.add_column(col)
    table.meta["description"] = "radioflow datalake: ObsCore 1.1 search result"
    return table
