"""Optional console pages of other radioflow parts: SDP blocks (``radioflow.ops.sdp``) and the
datalake (``radioflow.ops.lake``). A page appears only when its module imports.

A module takes part by defining::

    def console_section(workdir: str, query: Mapping[str, str]) -> Mapping[str, Any]:
        return {"title": ..., "columns": [...], "rows": [{column: value, ...}, ...],
                "search": ["ra", "dec", "radius", "type", "after", "before"],   # optional form fields
                "note": "..."}                                                 # optional

A row may carry ``"preview"``: PNG bytes or a local PNG path, shown as a picture. The console
only reads what the function returns and masks every value by name (radioflow.secrets).
"""
from __future__ import annotations

import base64
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .mask import Masker

#: URL name -> (module, menu title)
OPTIONAL = {"sdp": ("radioflow.ops.sdp", "SDP blocks"), "lake": ("radioflow.ops.lake", "Datalake")}


@dataclass
class Section:
    """One page of an optional module, as the console shows it."""

    key: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    note: str = ""


def _module(name: str) -> Any | None:
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available() -> dict[str, str]:
    """URL name -> menu title of the optional pages whose modules are installed."""
    return {key: title for key, (mod, title) in OPTIONAL.items() if _module(mod) is not None}


def _preview(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, (str, Path)) and str(value).lower().endswith(".png") and Path(value).is_file():
        data = Path(value).read_bytes()
    else:
        return ""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def load(key: str, workdir: str, query: Mapping[str, str]) -> Section | None:
    """The page ``key`` for ``workdir`` (None when its module is not installed)."""
    if key not in OPTIONAL:
        return None
    mod_name, title = OPTIONAL[key]
    mod = _module(mod_name)
    if mod is None:
        return None
    hook = getattr(mod, "console_section", None)
    if hook is None:      # radioflow's own SDP and lake: read through their public functions
        from . import ops_pages

        hook = {"sdp": ops_pages.sdp_section, "lake": ops_pages.lake_section}[key]
    raw = hook(workdir, dict(query))
    masker = Masker()
    section = Section(key, str(raw.get("title") or title), [str(c) for c in raw.get("columns") or []],
                      search=[str(s) for s in raw.get("search") or []], note=masker.text(str(raw.get("note") or "")))
    for row in raw.get("rows") or []:
        shown = masker.value({k: v for k, v in row.items() if k != "preview"})
        shown["preview"] = _preview(row.get("preview"))
        section.rows.append(shown)
    if not section.columns and section.rows:
        section.columns = [c for c in section.rows[0] if c != "preview"]
    return section
