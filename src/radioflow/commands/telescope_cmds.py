"""CLI: ``telescopes`` (the named layouts a simulation can use, with station counts)."""
from __future__ import annotations

from typing import Any

import typer


def telescopes(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the telescope layouts: packaged real arrays, built-in models and the layout search path."""
    import json

    from ..config import load_config
    from ..science.telescopes import available_layouts

    rows: list[dict[str, Any]] = []
    for name, lay, kind in available_layouts(load_config()):
        diam = sorted({float(d) for d in lay.dish_diameter})
        rows.append({"name": name, "stations": lay.n, "telescope": lay.telescope or "-", "kind": kind,
                     "diameters_m": diam, "max_baseline_km": round(_max_baseline(lay.enu) / 1e3, 3),
                     "source": lay.source})
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("name", "stations", "telescope", "dishes (m)", "max baseline (km)", "kind"):
        table.add_column(col, no_wrap=col == "name")
    for r in rows:
        table.add_row(r["name"], str(r["stations"]), r["telescope"], "/".join(f"{d:g}" for d in r["diameters_m"]),
                      f"{r['max_baseline_km']:.1f}", r["kind"])
    Console(highlight=False).print(table)


def _max_baseline(enu) -> float:
    """Longest horizontal baseline (m): the extent of the array's convex hull."""
    import numpy as np
    from scipy.spatial import ConvexHull

    pts = np.asarray(enu)[:, :2]
    if len(pts) > 3:
        pts = pts[ConvexHull(pts).vertices]
    return float(np.max(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("telescopes")(telescopes)
