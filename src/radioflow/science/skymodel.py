"""Sky models: point and Gaussian components, random GLEAM-like fields, CSV catalogues.

Angles are radians internally; the CSV catalogue uses degrees and arcseconds, one component
per row: ``name, ra_deg, dec_deg, flux_jy, ref_freq_hz, spectral_index, major_arcsec,
minor_arcsec, pa_deg`` (major = minor = 0 for a point source; FWHM axes, PA north through east).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..processes import remove_stale_siblings

_COLUMNS = ["name", "ra_deg", "dec_deg", "flux_jy", "ref_freq_hz", "spectral_index",
            "major_arcsec", "minor_arcsec", "pa_deg"]
_ARCSEC = math.pi / 180 / 3600


@dataclass
class SkyModel:
    """Components as parallel arrays (radians, Jy, Hz)."""

    ra: np.ndarray
    dec: np.ndarray
    flux: np.ndarray
    ref_freq: np.ndarray
    spectral_index: np.ndarray
    major: np.ndarray
    minor: np.ndarray
    pa: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return int(self.ra.size)

    @classmethod
    def from_components(cls, ra, dec, flux, *, ref_freq=1e8, spectral_index=0.0,
                        major=0.0, minor=0.0, pa=0.0, names=None) -> "SkyModel":
        """Build from scalars or arrays (broadcast to the number of components)."""
        ra = np.atleast_1d(np.asarray(ra, np.float64))
        n = ra.size

        def arr(x):
            return np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()

        return cls(ra=ra, dec=arr(dec), flux=arr(flux), ref_freq=arr(ref_freq),
                   spectral_index=arr(spectral_index), major=arr(major), minor=arr(minor),
                   pa=arr(pa), names=list(names) if names is not None else [f"c{i}" for i in range(n)])

    def flux_at(self, freq: np.ndarray) -> np.ndarray:
        """Flux density ``(ncomp, nchan)`` at the given frequencies (power-law spectrum)."""
        return self.flux[:, None] * (np.asarray(freq)[None, :] / self.ref_freq[:, None]) ** self.spectral_index[:, None]

    def lmn(self, ra0: float, dec0: float) -> np.ndarray:
        """Direction cosines ``(ncomp, 3)``: l (east), m (north), n relative to (ra0, dec0)."""
        return radec_to_lmn(self.ra, self.dec, ra0, dec0)

    def is_gaussian(self) -> np.ndarray:
        """True for components with a non-zero size."""
        return (self.major > 0) | (self.minor > 0)


def radec_to_lmn(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Direction cosines (SIN projection) of (ra, dec) around the phase centre (ra0, dec0)."""
    dra = np.asarray(ra) - ra0
    cd = np.cos(dec)
    l = cd * np.sin(dra)
    m = np.sin(dec) * math.cos(dec0) - cd * math.sin(dec0) * np.cos(dra)
    n = np.sqrt(np.clip(1.0 - l * l - m * m, 0.0, None))
    return np.stack([l, m, n], axis=-1)


def lm_to_radec(l: np.ndarray, m: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse SIN projection: direction cosines to (ra, dec) in radians."""
    l, m = np.asarray(l, np.float64), np.asarray(m, np.float64)
    n = np.sqrt(1.0 - l * l - m * m)
    dec = np.arcsin(m * math.cos(dec0) + n * math.sin(dec0))
    ra = ra0 + np.arctan2(l, n * math.cos(dec0) - m * math.sin(dec0))
    return ra % (2 * math.pi), dec


def pixel_to_radec(x: np.ndarray, y: np.ndarray, npix_x: int, npix_y: int, cell_x: float, cell_y: float,
                   ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Sky position of image pixel centres (0-based x, y) in the radioflow/WSClean convention."""
    l = -(np.asarray(x, np.float64) - npix_x // 2) * cell_x
    m = (np.asarray(y, np.float64) - npix_y // 2) * cell_y
    return lm_to_radec(l, m, ra0, dec0)


def random_field(
    ra0: float,
    dec0: float,
    *,
    radius: float,
    nsources: int | None = None,
    flux_min: float = 0.1,
    flux_max: float = 10.0,
    slope: float = -1.6,
    density: float | None = None,
    spectral_index_mean: float = -0.7,
    spectral_index_rms: float = 0.2,
    ref_freq: float = 1e8,
    seed: int | None = None,
) -> SkyModel:
    """A random field of point sources above ``flux_min`` within ``radius`` (rad) of (ra0, dec0).

    Fluxes follow a power-law differential count dN/dS ∝ S^(slope−1) (integral count N(>S) ∝
    S^slope; GLEAM's bright counts have slope ≈ −1.6 to −0.8). Either ``nsources`` or a
    ``density`` (sources per steradian above ``flux_min``) sets the number.
    """
    if flux_min <= 0 or flux_max <= flux_min:
        raise UsageError(f"Need 0 < flux_min < flux_max, got {flux_min} and {flux_max} Jy.")
    if radius <= 0 or radius > math.pi / 2:
        raise UsageError(f"Field radius must be in (0, 90°], got {math.degrees(radius)}°.")
    rng = np.random.default_rng(seed)
    solid_angle = 2 * math.pi * (1 - math.cos(radius))
    if nsources is None:
        nsources = rng.poisson((density or 100.0) * solid_angle)
    if nsources < 0:
        raise UsageError(f"nsources must be ≥ 0, got {nsources}.")
    u = rng.uniform(size=nsources)
    a, b = flux_min**slope, flux_max**slope
    flux = (a + u * (b - a)) ** (1.0 / slope)
    # Uniform on the spherical cap around the phase centre.
    cos_r = rng.uniform(math.cos(radius), 1.0, nsources)
    r = np.arccos(cos_r)
    phi = rng.uniform(0, 2 * math.pi, nsources)
    l, m = np.sin(r) * np.sin(phi), np.sin(r) * np.cos(phi)
    ra, dec = lm_to_radec(l, m, ra0, dec0)
    alpha = rng.normal(spectral_index_mean, spectral_index_rms, nsources)
    order = np.argsort(-flux)
    return SkyModel.from_components(ra[order], dec[order], flux[order], ref_freq=ref_freq,
                                    spectral_index=alpha[order], names=[f"src{i:04d}" for i in range(nsources)])


def write_catalogue(sky: SkyModel, path: str | os.PathLike) -> Path:
    """Write a CSV catalogue atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)           # temporaries of killed writers of this catalogue
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_COLUMNS)
        for i in range(len(sky)):
            w.writerow([sky.names[i], repr(float(math.degrees(sky.ra[i]))), repr(float(math.degrees(sky.dec[i]))),
                        repr(float(sky.flux[i])), repr(float(sky.ref_freq[i])), repr(float(sky.spectral_index[i])),
                        repr(float(sky.major[i] / _ARCSEC)), repr(float(sky.minor[i] / _ARCSEC)), repr(float(math.degrees(sky.pa[i])))])
    os.replace(tmp, path)
    return path


def read_catalogue(path: str | os.PathLike) -> SkyModel:
    """Read a CSV catalogue written by :func:`write_catalogue` (missing optional columns default)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Sky-model catalogue {path} does not exist.")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or [])
        missing = {"ra_deg", "dec_deg", "flux_jy"} - fields
        if missing:
            raise UsageError(f"{path}: missing column(s) {', '.join(sorted(missing))} (need {', '.join(_COLUMNS)}).")
        rows = list(reader)
    defaults = {"ref_freq_hz": 1e8, "spectral_index": 0.0, "major_arcsec": 0.0, "minor_arcsec": 0.0, "pa_deg": 0.0}
    vals: dict[str, list[float]] = {k: [] for k in _COLUMNS[1:]}
    for lineno, row in enumerate(rows, start=2):
        for key in vals:
            raw = row.get(key)
            try:
                vals[key].append(float(raw) if raw not in (None, "") else defaults[key])
            except (ValueError, KeyError):
                raise UsageError(f"{path}:{lineno}: column {key} must be a number, found '{raw}'.") from None
    names = [row.get("name") or f"c{i}" for i, row in enumerate(rows)]
    return SkyModel.from_components(
        np.radians(vals["ra_deg"]), np.radians(vals["dec_deg"]), vals["flux_jy"],
        ref_freq=vals["ref_freq_hz"], spectral_index=vals["spectral_index"],
        major=np.array(vals["major_arcsec"]) * _ARCSEC, minor=np.array(vals["minor_arcsec"]) * _ARCSEC,
        pa=np.radians(vals["pa_deg"]), names=names)
