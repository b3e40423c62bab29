"""Telescope layouts: read OSKAR / CASA / CSV antenna lists, built-in model arrays, selection.

A :class:`Layout` holds the array reference position (WGS84 longitude, latitude, height) and
each station's east/north/up offset in metres; ITRF positions follow from the standard
ENU → ECEF rotation.

The package ships the real published layouts ``ska-mid-aastar``, ``ska-mid-aa4``,
``ska-low-aastar``, ``ska-low-aa4`` and ``meerkat`` (``radioflow/data/layouts``, converted by
``tools/convert_layouts.py``; source and licence beside them). The built-in ``ska-low-model``
and ``ska-mid-model`` layouts are *models* generated from a fixed seed (a dense core plus
logarithmic spiral arms) for offline use and tests. More layouts are found on the search path
(config ``layouts.path`` or ``RADIOFLOW_LAYOUTS``), which wins over the packaged names.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import UsageError

#: WGS84 reference positions (lon deg, lat deg, height m) of the sites.
SITES: dict[str, tuple[float, float, float]] = {
    "ska-low": (116.764448, -26.824722, 377.0),
    "ska-mid": (21.443803, -30.712925, 1053.0),
    "meerkat": (21.443803, -30.712925, 1053.0),
}

_WGS84_A = 6378137.0
_WGS84_F = 1.0 / 298.257223563


@dataclass(frozen=True)
class Layout:
    """An antenna array: names, ENU offsets (m) from ``site`` and dish diameters (m)."""

    name: str
    site: tuple[float, float, float]
    enu: np.ndarray
    names: tuple[str, ...]
    dish_diameter: np.ndarray
    source: str = "built-in"
    telescope: str = field(default="")

    @property
    def n(self) -> int:
        """Number of stations."""
        return len(self.names)

    def itrf(self) -> np.ndarray:
        """ITRF (ECEF) positions ``(n, 3)`` in metres."""
        return enu_to_itrf(self.enu, *self.site)

    def radius(self) -> np.ndarray:
        """Horizontal distance of each station from the array centre (m)."""
        centre = np.median(self.enu[:, :2], axis=0) if self.n else np.zeros(2)
        return np.hypot(*(self.enu[:, :2] - centre).T)

    def select(self, *, rmax: float | None = None, names: Iterable[str] | None = None) -> "Layout":
        """Keep stations within ``rmax`` metres of the array centre and/or with the given names."""
        keep = np.ones(self.n, bool)
        if rmax is not None:
            if rmax <= 0:
                raise UsageError(f"rmax must be positive, got {rmax} m.")
            keep &= self.radius() <= rmax
        if names is not None:
            wanted = list(names)
            unknown = sorted(set(wanted) - set(self.names))
            if unknown:
                raise UsageError(
                    f"Station(s) {', '.join(unknown)} are not in layout {self.name} "
                    f"(it has {self.names[0]} … {self.names[-1]})."
                )
            keep &= np.isin(np.array(self.names), wanted)
        if keep.sum() < 2:
            raise UsageError(
                f"Selecting stations of {self.name} (rmax={rmax}) leaves {int(keep.sum())} station(s); "
                "an interferometer needs at least 2."
            )
        idx = np.flatnonzero(keep)
        return replace(self, enu=self.enu[idx], names=tuple(self.names[i] for i in idx),
                       dish_diameter=self.dish_diameter[idx])


def enu_to_itrf(enu: np.ndarray, lon_deg: float, lat_deg: float, height: float) -> np.ndarray:
    """East/north/up offsets at a WGS84 site to ITRF (ECEF) coordinates."""
    lon, lat = math.radians(lon_deg), math.radians(lat_deg)
    e2 = _WGS84_F * (2 - _WGS84_F)
    nrad = _WGS84_A / math.sqrt(1 - e2 * math.sin(lat) ** 2)
    origin = np.array([
        (nrad + height) * math.cos(lat) * math.cos(lon),
        (nrad + height) * math.cos(lat) * math.sin(lon),
        (nrad * (1 - e2) + height) * math.sin(lat),
    ])
    sl, cl, sp, cp = math.sin(lon), math.cos(lon), math.sin(lat), math.cos(lat)
    rot = np.array([[-sl, -sp * cl, cp * cl], [cl, -sp * sl, cp * sl], [0.0, cp, sp]])
    return origin + np.asarray(enu, np.float64) @ rot.T


def itrf_to_enu(xyz: np.ndarray, lon_deg: float, lat_deg: float, height: float) -> np.ndarray:
    """Inverse of :func:`enu_to_itrf`."""
    origin = enu_to_itrf(np.zeros((1, 3)), lon_deg, lat_deg, height)[0]
    lon, lat = math.radians(lon_deg), math.radians(lat_deg)
    sl, cl, sp, cp = math.sin(lon), math.cos(lon), math.sin(lat), math.cos(lat)
    rot = np.array([[-sl, -sp * cl, cp * cl], [cl, -sp * sl, cp * sl], [0.0, cp, sp]])
    return (np.asarray(xyz, np.float64) - origin) @ rot


def itrf_to_geodetic(xyz: np.ndarray) -> tuple[float, float, float]:
    """Mean ITRF position to WGS84 (lon deg, lat deg, height m)."""
    from astropy.coordinates import EarthLocation

    centre = np.asarray(xyz, np.float64).mean(axis=0)
    loc = EarthLocation.from_geocentric(*centre, unit="m")
    return float(loc.lon.deg), float(loc.lat.deg), float(loc.height.value)


def _numbers(path: Path, min_cols: int) -> np.ndarray:
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.replace(",", " ").split()
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise UsageError(f"{path}:{lineno}: expected numbers, found '{line.strip()}'.") from None
        if len(parts) < min_cols:
            raise UsageError(f"{path}:{lineno}: expected at least {min_cols} numbers, found {len(parts)}.")
    if not rows:
        raise UsageError(f"{path} holds no positions.")
    width = min(len(r) for r in rows)
    return np.array([r[:width] for r in rows])


def _site_for(name: str) -> str:
    low = name.lower()
    return "ska-low" if "low" in low else ("meerkat" if "meerkat" in low else "ska-mid")


def _default_diameter(name: str) -> float:
    low = name.lower()
    if "low" in low:
        return 38.0
    if "meerkat" in low:
        return 13.5
    return 15.0


def read_oskar(path: str | os.PathLike) -> Layout:
    """Read an OSKAR telescope-model directory (``position.txt`` + ``layout.txt``)."""
    path = Path(path)
    pos_file, lay_file = path / "position.txt", path / "layout.txt"
    for f in (pos_file, lay_file):
        if not f.is_file():
            raise UsageError(f"OSKAR telescope model {path} has no {f.name} (expected position.txt and layout.txt).")
    pos = _numbers(pos_file, 2)[0]
    site = (float(pos[0]), float(pos[1]), float(pos[2]) if pos.size > 2 else 0.0)
    lay = _numbers(lay_file, 2)
    enu = np.zeros((lay.shape[0], 3))
    enu[:, : min(3, lay.shape[1])] = lay[:, :3]
    name = path.name.removesuffix(".tm")
    names = tuple(f"{name}-{i:03d}" for i in range(enu.shape[0]))
    diam = np.full(enu.shape[0], _default_diameter(name))
    if "MID-AA4" in name.upper() and enu.shape[0] == 197:
        diam[:64] = 13.5
    return Layout(name=name, site=site, enu=enu, names=names, dish_diameter=diam, source=str(path))


def read_casa_cfg(path: str | os.PathLike) -> Layout:
    """Read a CASA simobserve ``.cfg`` antenna list (``coordsys=XYZ`` or ``LOC``)."""
    path = Path(path)
    header: dict[str, str] = {}
    rows: list[list[str]] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s.lstrip("#").strip()
            if "=" in body:
                k, v = body.split("=", 1)
                header[k.strip().lower()] = v.strip()
            continue
        parts = s.split()
        if len(parts) < 4:
            raise UsageError(f"{path}:{lineno}: expected 'x y z diameter [name]', found '{s}'.")
        rows.append(parts + [""] * 2)
    if not rows:
        raise UsageError(f"{path} holds no antennas.")
    try:
        xyz = np.array([[float(r[0]), float(r[1]), float(r[2])] for r in rows])
        diam = np.array([float(r[3]) for r in rows])
    except ValueError as exc:
        raise UsageError(f"{path}: bad number in antenna list ({exc}).") from None
    names = tuple(r[4] or f"A{i:03d}" for i, r in enumerate(rows))
    coordsys = header.get("coordsys", "XYZ").upper()
    observatory = header.get("observatory", path.stem)
    if coordsys.startswith("LOC"):
        site_key = _site_for(observatory)
        site = SITES[site_key]
        enu = xyz
    elif coordsys.startswith("XYZ"):
        site = itrf_to_geodetic(xyz)
        enu = itrf_to_enu(xyz, *site)
    else:
        raise UsageError(f"{path}: coordsys={coordsys} is not supported (use XYZ or LOC).")
    return Layout(name=path.stem, site=site, enu=enu, names=names, dish_diameter=diam,
                  source=str(path), telescope=observatory)


def _csv_comments(path: Path) -> dict[str, str]:
    """``# key: value`` comment lines of a layout CSV (``telescope``, ``reference``, ``source``)."""
    found: dict[str, str] = {}
    with path.open() as fh:
        for line in fh:
            if not line.lstrip().startswith("#"):
                continue
            key, sep, value = line.lstrip().lstrip("#").partition(":")
            if sep and key.strip().isidentifier():
                found.setdefault(key.strip().lower(), value.strip())
    return found


def _reference(path: Path, text: str) -> tuple[float, float, float]:
    """Parse ``lon=.. lat=.. [height=..]`` of a ``# reference:`` comment."""
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    try:
        return float(fields["lon"]), float(fields["lat"]), float(fields.get("height", 0.0))
    except (KeyError, ValueError):
        raise UsageError(f"{path}: '# reference: {text}' must read 'lon=DEG lat=DEG [height=M]'.") from None


def read_csv(path: str | os.PathLike) -> Layout:
    """Read a CSV with a header: ``name, lon, lat[, height]`` or ``name, e, n[, u]`` (+ ``diameter``).

    Comment lines ``# telescope: NAME`` and ``# reference: lon=.. lat=.. height=..`` (the origin
    of e, n, u) are honoured; without a reference the site follows the file name.
    """
    path = Path(path)
    comments = _csv_comments(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(row for row in fh if not row.lstrip().startswith("#"))
        cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        rows = list(reader)
    if not rows:
        raise UsageError(f"{path} holds no stations.")

    def col(*names: str) -> str | None:
        return next((cols[n] for n in names if n in cols), None)

    def floats(key: str | None, default: float = 0.0) -> np.ndarray:
        if key is None:
            return np.full(len(rows), default)
        out = []
        for i, row in enumerate(rows, start=2):
            try:
                out.append(float(row[key]))
            except (TypeError, ValueError):
                raise UsageError(f"{path}:{i}: column '{key}' is not a number ('{row[key]}').") from None
        return np.array(out)

    name_key = col("name", "station")
    names = tuple(row[name_key].strip() for row in rows) if name_key else tuple(f"S{i:03d}" for i in range(len(rows)))
    diam = floats(col("diameter", "dish_diameter"), _default_diameter(path.stem))
    e_key, n_key = col("e", "east", "x"), col("n", "north", "y")
    lon_key, lat_key = col("lon", "longitude"), col("lat", "latitude")
    if e_key and n_key:
        enu = np.stack([floats(e_key), floats(n_key), floats(col("u", "up", "z"))], axis=1)
        ref = comments.get("reference")
        site = _reference(path, ref) if ref else SITES[_site_for(path.stem)]
    elif lon_key and lat_key:
        lon, lat, h = floats(lon_key), floats(lat_key), floats(col("height", "alt", "altitude"))
        from astropy.coordinates import EarthLocation

        loc = EarthLocation.from_geodetic(lon, lat, h)
        xyz = np.stack([loc.x.value, loc.y.value, loc.z.value], axis=1)
        site = (float(np.mean(lon)), float(np.mean(lat)), float(np.mean(h)))
        enu = itrf_to_enu(xyz, *site)
    else:
        raise UsageError(f"{path}: need columns name,lon,lat[,height] or name,e,n[,u]; found {list(cols)}.")
    return Layout(name=path.stem, site=site, enu=enu, names=names, dish_diameter=diam,
                  source=comments.get("source", str(path)), telescope=comments.get("telescope", ""))


def _spiral_model(name: str, site: str, n_core: int, core_radius: float, n_arms: int, per_arm: int,
                  r_min: float, r_max: float, diameter: np.ndarray | float, seed: int, min_sep: float) -> Layout:
    rng = np.random.default_rng(seed)
    core: list[np.ndarray] = []
    while len(core) < n_core:
        cand = rng.uniform(-core_radius, core_radius, 2)
        if np.hypot(*cand) > core_radius:
            continue
        if core and np.min(np.hypot(*(np.array(core) - cand).T)) < min_sep:
            continue
        core.append(cand)
    radii = np.geomspace(r_min, r_max, per_arm)
    arms = []
    for a in range(n_arms):
        theta = 2 * np.pi * a / n_arms + 1.2 * np.log(radii / r_min)
        arms.append(np.stack([radii * np.cos(theta), radii * np.sin(theta)], axis=1))
    en = np.vstack([np.array(core)] + arms)
    en += rng.normal(0, 0.02, en.shape) * np.hypot(*en.T)[:, None] / 10
    enu = np.column_stack([en, np.zeros(len(en))])
    prefix = "S" if "low" in name else "M"
    names = tuple(f"{prefix}{i:03d}" for i in range(len(en)))
    diam = np.broadcast_to(np.asarray(diameter, float), (len(en),)).copy()
    return Layout(name=name, site=SITES[site], enu=enu, names=names, dish_diameter=diam)


def builtin_layout(name: str) -> Layout:
    """The built-in model layouts (see the module docstring: models, not official positions)."""
    if name == "ska-low-model":
        return _spiral_model(name, "ska-low", 224, 500.0, 3, 96, 600.0, 37_000.0, 38.0, 20240101, 40.0)
    if name == "ska-mid-model":
        diam = np.r_[np.full(64, 13.5), np.full(133, 15.0)]
        return _spiral_model(name, "ska-mid", 98, 1000.0, 3, 33, 1200.0, 80_000.0, diam, 20240102, 20.0)
    raise KeyError(name)


BUILTIN_LAYOUTS = ("ska-low-model", "ska-mid-model")
#: directory of the packaged real layouts (``<name>.csv``).
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "data" / "layouts"


def packaged_layouts() -> list[str]:
    """Names of the real layouts shipped with the package."""
    return sorted(p.stem for p in PACKAGED_DIR.glob("*.csv"))


def available_layouts(config: dict | None = None) -> list[tuple[str, Layout, str]]:
    """Every named layout: ``(name, layout, kind)`` with kind ``packaged``, ``model`` or a search-path dir."""
    found: dict[str, tuple[str, Layout, str]] = {}
    for d in layout_search_path(config):
        if d.is_dir():
            for entry in sorted(d.iterdir()):
                if (entry.is_dir() and entry.suffix == ".tm") or (entry.is_file() and entry.suffix in (".cfg", ".csv")):
                    key = entry.stem.lower()
                    found.setdefault(key, (key, read_layout_file(entry), str(d)))
    for name in packaged_layouts():
        found.setdefault(name, (name, read_csv(PACKAGED_DIR / f"{name}.csv"), "packaged"))
    for name in BUILTIN_LAYOUTS:
        found.setdefault(name, (name, builtin_layout(name), "model"))
    return list(found.values())


def layout_search_path(config: dict | None = None) -> list[Path]:
    """Directories searched for named layouts: ``RADIOFLOW_LAYOUTS`` (os.pathsep list), then config."""
    dirs: list[Path] = []
    env = os.environ.get("RADIOFLOW_LAYOUTS", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    cfg_paths = ((config or {}).get("layouts") or {}).get("path") or []
    if isinstance(cfg_paths, str):
        cfg_paths = [cfg_paths]
    dirs += [Path(p).expanduser() for p in cfg_paths]
    return dirs


def read_layout_file(path: Path) -> Layout:
    """Read a layout from a path, choosing the reader by its form."""
    if path.is_dir():
        return read_oskar(path)
    if path.suffix.lower() == ".cfg":
        return read_casa_cfg(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return read_csv(path)
    raise UsageError(f"Layout file {path}: unknown format (use an OSKAR .tm directory, a CASA .cfg or a .csv).")


def load_layout(name_or_path: str, *, config: dict | None = None,
                search_path: Sequence[Path] | None = None) -> Layout:
    """Resolve a layout by path, built-in name, or name found on the layout search path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return read_layout_file(candidate)
    if name_or_path in BUILTIN_LAYOUTS:
        return builtin_layout(name_or_path)
    dirs = list(search_path) if search_path is not None else layout_search_path(config)
    lowered = name_or_path.lower()
    for d in dirs:
        if not d.is_dir():
            continue
        for entry in sorted(d.iterdir()):
            stem = entry.name.lower()
            for suffix in (".tm", ".cfg", ".csv"):
                stem = stem.removesuffix(suffix)
            if stem == lowered or entry.name.lower() == lowered:
                return read_layout_file(entry)
    if lowered in packaged_layouts():
        return read_csv(PACKAGED_DIR / f"{lowered}.csv")
    looks_like_path = os.sep in name_or_path or name_or_path.endswith((".tm", ".cfg", ".csv"))
    if looks_like_path:
        raise UsageError(f"Layout file {name_or_path} does not exist.")
    searched = ", ".join(str(d) for d in dirs) or "no directories (set RADIOFLOW_LAYOUTS or layouts.path)"
    raise UsageError(
        f"Unknown telescope layout '{name_or_path}': it is not a file, not a packaged layout "
        f"({', '.join(packaged_layouts())}), not a built-in model ({', '.join(BUILTIN_LAYOUTS)}) and "
        f"not found in the layout search path ({searched}). 'radioflow telescopes' lists them."
    )
