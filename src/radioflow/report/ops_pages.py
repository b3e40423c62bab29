"""Console pages over radioflow's SDP state and datalake catalogue, used when those modules are
installed but offer no ``console_section`` of their own. Both only read: SDP blocks through
``radioflow.ops.sdp.operations.status``, lake products through ``Catalogue.search``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError

MAX_PREVIEWS = 12


def sdp_section(workdir: str, query: Mapping[str, str]) -> dict[str, Any]:
    """Scheduling-block instances and their processing blocks with states (``state=`` filters)."""
    from ..ops.sdp.configdb import open_store
    from ..ops.sdp.operations import status

    columns = ["scheduling block", "SBI status", "processing block", "kind", "workflow", "state", "reason", "runs"]
    if not os.environ.get("RADIOFLOW_SDP_STORE") and not Path(workdir, ".radioflow", "runs.db").is_file():
        return {"title": "SDP scheduling and processing blocks", "rows": [], "columns": columns,
                "note": "No scheduling blocks submitted here."}   # never create a store by looking
    db = open_store(workdir=workdir)
    try:
        sbis = status(db)
    finally:
        close = getattr(db, "close", None)
        if callable(close):
            close()
    want = (query.get("state") or "").strip().upper()
    rows = []
    for sbi in sbis:
        for pb in sbi["processing_blocks"]:
            if want and str(pb.get("state") or "").upper() != want:
                continue
            rows.append({"scheduling block": sbi["id"], "SBI status": sbi["status"], "processing block": pb["id"],
                         "kind": pb.get("kind"), "workflow": f"{pb.get('workflow')} {pb.get('version') or ''}".strip(),
                         "state": pb.get("state"), "reason": pb.get("reason") or "",
                         "runs": ", ".join(pb.get("run_ids") or [])})
    return {"title": "SDP scheduling and processing blocks", "rows": rows, "search": ["state"],
            "columns": columns,
            "note": f"{len(sbis)} scheduling-block instances" if sbis else "No scheduling blocks submitted here."}


def _float(query: Mapping[str, str], key: str) -> float | None:
    value = (query.get(key) or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"{key}={value!r}: give a number.") from None


def _lake_root(workdir: str) -> Path:
    from ..config import load_config

    configured = (load_config(cwd=Path(workdir)).get("lake") or {}).get("root")
    root = Path(configured) if configured else Path(workdir)
    return root if root.is_absolute() else Path(workdir, root)


def _preview(url: str | None, workdir: str) -> Any:
    """A PNG beside a local FITS replica, else the FITS drawn (None for anything else)."""
    if not url or ("://" in url and not url.startswith("file://")):
        return None
    path = Path(url.removeprefix("file://"))
    path = path if path.is_absolute() else Path(workdir, path)
    if path.suffix.lower() not in (".fits", ".fit") or not path.is_file():
        return None
    png = path.with_suffix(".png")
    if png.is_file():
        return png
    from .science_plots import image_png

    try:
        return image_png(path, path.name)[0]
    except Exception:      # a preview is a courtesy: a damaged file shows none
        return None


def lake_section(workdir: str, query: Mapping[str, str]) -> dict[str, Any]:
    """Available lake products, searchable by position (ra, dec, radius in degrees), type and time (MJD)."""
    from ..ops.lake.catalogue import CATALOGUE_NAME, Catalogue, Query

    root = _lake_root(workdir)
    columns = ["did", "dataproduct_type", "calib_level", "s_ra", "s_dec", "t_min", "t_max", "obs_id"]
    search = ["ra", "dec", "radius", "type", "start", "end"]
    if not (root / CATALOGUE_NAME).is_file():
        return {"title": "Datalake products", "rows": [], "columns": columns, "search": search,
                "note": f"No lake catalogue at {root} (set lake.root in radioflow.yml)."}
    try:
        q = Query(ra=_float(query, "ra"), dec=_float(query, "dec"), radius=_float(query, "radius"),
                  dataproduct_type=(query.get("type") or "").strip() or None,
                  t_start=_float(query, "start"), t_end=_float(query, "end"))
        with Catalogue(root / CATALOGUE_NAME) as cat:
            found = cat.search(q, limit=500)
    except UsageError as exc:
        return {"title": "Datalake products", "rows": [], "columns": columns, "search": search, "note": str(exc)}
    rows = []
    for i, r in enumerate(found):
        row = {c: r.get(c) for c in columns}
        if "distance" in r:
            row["distance (deg)"] = round(float(r["distance"]), 4)
        if i < MAX_PREVIEWS:
            row["preview"] = _preview(r.get("url"), workdir)
        rows.append(row)
    if any("distance (deg)" in r for r in rows):
        columns = [*columns, "distance (deg)"]
    return {"title": "Datalake products", "rows": rows, "columns": columns, "search": search,
            "note": f"{len(rows)} products in {root}"}
