"""Convert the reference OSKAR telescope models into radioflow's packaged layout CSVs.

Usage: ``python tools/convert_layouts.py [SOURCE_DIR] [OUT_DIR]``
(defaults: ``../shared/data/layouts`` and ``src/radioflow/data/layouts``).

Each ``*.tm`` directory holds ``position.txt`` (array reference lon, lat in degrees, WGS84)
and ``layout.txt`` (east, north[, up] offsets in metres). The output CSV keeps the offsets
exactly as published, records the reference position, telescope name and source in comment
lines, and adds station names and dish diameters:

* SKA-Mid: the 64 MeerKAT dishes (13.5 m) are found by position (they match the MeerKAT
  model to millimetres after a change of reference) and named M000..M063; the SKA dishes
  (15 m) are numbered SKA001.. in the order of the AA4 file.
* SKA-Low: 38 m stations named S000.. by their row in the AA4 file, so a station keeps its
  name in AA* (a subset of AA4).
* MeerKAT: M000..M063 in file order (no heights in the source: up = 0).

The source files carry no heights for the reference positions; radioflow's nominal site
heights are written instead (they only shift the array as a whole).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from radioflow.science.telescopes import enu_to_itrf, itrf_to_enu  # noqa: E402

SOURCE = ("SKAO ska-ost-array-config 2.3.1 as distributed in the OSKAR telescope models of "
          "Karabo-Pipeline (https://github.com/i4Ds/Karabo-Pipeline, MIT licence)")
MEERKAT_SOURCE = "Karabo-Pipeline meerkat.tm (https://github.com/i4Ds/Karabo-Pipeline, MIT licence)"
#: nominal site heights (m); the OSKAR position files have none.
HEIGHT = {"SKA-Mid": 1053.0, "SKA-Low": 377.0, "MeerKAT": 1053.0}
MATCH_TOLERANCE_M = 0.05


@dataclass
class Model:
    """One OSKAR model as read from disk."""

    lon: float
    lat: float
    enu: np.ndarray


def read_model(path: Path) -> Model:
    """Reference position and (n, 3) ENU offsets of an OSKAR ``.tm`` directory."""
    pos = np.loadtxt(path / "position.txt", ndmin=1)
    lay = np.loadtxt(path / "layout.txt", ndmin=2)
    enu = np.zeros((lay.shape[0], 3))
    enu[:, : min(3, lay.shape[1])] = lay[:, :3]
    return Model(float(pos[0]), float(pos[1]), enu)


def match_rows(big: np.ndarray, small: np.ndarray, what: str) -> np.ndarray:
    """Row of ``big`` at the position of each row of ``small`` (horizontal distance < tolerance)."""
    dist = np.hypot(*(big[None, :, :2] - small[:, None, :2]).transpose(2, 0, 1))
    idx = dist.argmin(axis=1)
    worst = dist[np.arange(len(small)), idx].max()
    if worst > MATCH_TOLERANCE_M or len(set(idx.tolist())) != len(idx):
        raise SystemExit(f"{what}: stations do not match one to one (worst {worst:.3f} m)")
    return idx


def mid_names(aa4: Model, meerkat: Model) -> list[str]:
    """Names of the AA4 dishes: MeerKAT dishes found by position, then SKA001.. in file order."""
    mk = itrf_to_enu(enu_to_itrf(meerkat.enu, meerkat.lon, meerkat.lat, 0.0), aa4.lon, aa4.lat, 0.0)
    # The MeerKAT reference is rounded to 1e-3 deg: align on M000 before matching the rest.
    nearest = np.hypot(*(aa4.enu[:, :2] - mk[0, :2]).T).argmin()
    mk += aa4.enu[nearest] - mk[0]
    rows = match_rows(aa4.enu, mk, "MeerKAT in SKA-Mid AA4")
    names = [""] * len(aa4.enu)
    for k, r in enumerate(rows):
        names[r] = f"M{k:03d}"
    ska = 0
    for i, n in enumerate(names):
        if not n:
            ska += 1
            names[i] = f"SKA{ska:03d}"
    return names


def write_csv(out: Path, key: str, telescope: str, source: str, model: Model, names: list[str],
              diameters: list[float]) -> None:
    """One packaged layout file (atomic: written aside, then renamed)."""
    lines = [
        f"# radioflow layout {key}: {len(names)} stations of {telescope}",
        f"# telescope: {telescope}",
        f"# reference: lon={model.lon!r} lat={model.lat!r} height={HEIGHT[telescope]!r}",
        f"# source: {source}",
        "# converted by tools/convert_layouts.py; e, n, u in metres from the reference (WGS84 horizon)",
        "name,e,n,u,diameter",
    ]
    lines += [f"{nm},{e:.6f},{n:.6f},{u:.6f},{d:g}" for nm, (e, n, u), d in zip(names, model.enu, diameters)]
    tmp = out.with_suffix(".csv.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)


def convert(src: Path, dst: Path) -> dict[str, int]:
    """Write the five packaged layouts; returns their station counts."""
    dst.mkdir(parents=True, exist_ok=True)
    meerkat = read_model(src / "MeerKAT.tm")
    mid4, mids = read_model(src / "SKA-MID-AA4.tm"), read_model(src / "SKA-MID-AAstar.tm")
    low4, lows = read_model(src / "SKA-LOW-AA4.tm"), read_model(src / "SKA-LOW-AAstar.tm")

    names4 = mid_names(mid4, meerkat)
    dia4 = [13.5 if n.startswith("M") else 15.0 for n in names4]
    write_csv(dst / "ska-mid-aa4.csv", "ska-mid-aa4", "SKA-Mid", SOURCE, mid4, names4, dia4)
    rows = match_rows(mid4.enu, mids.enu, "SKA-Mid AA* in AA4")
    write_csv(dst / "ska-mid-aastar.csv", "ska-mid-aastar", "SKA-Mid", SOURCE, mids,
              [names4[r] for r in rows], [dia4[r] for r in rows])

    low_names = [f"S{i:03d}" for i in range(len(low4.enu))]
    write_csv(dst / "ska-low-aa4.csv", "ska-low-aa4", "SKA-Low", SOURCE, low4, low_names, [38.0] * len(low_names))
    rows = match_rows(low4.enu, lows.enu, "SKA-Low AA* in AA4")
    write_csv(dst / "ska-low-aastar.csv", "ska-low-aastar", "SKA-Low", SOURCE, lows,
              [low_names[r] for r in rows], [38.0] * len(rows))

    mk_names = [f"M{i:03d}" for i in range(len(meerkat.enu))]
    write_csv(dst / "meerkat.csv", "meerkat", "MeerKAT", MEERKAT_SOURCE, meerkat, mk_names, [13.5] * len(mk_names))
    return {"ska-mid-aa4": len(mid4.enu), "ska-mid-aastar": len(mids.enu), "ska-low-aa4": len(low4.enu),
            "ska-low-aastar": len(lows.enu), "meerkat": len(meerkat.enu)}


def main(argv: list[str]) -> None:
    """Command-line entry point."""
    src = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "data" / "layouts"
    dst = Path(argv[2]) if len(argv) > 2 else ROOT / "src" / "radioflow" / "data" / "layouts"
    for key, n in convert(src, dst).items():
        print(f"{key}: {n} stations -> {dst / (key + '.csv')}")


if __name__ == "__main__":
    main(sys.argv)
