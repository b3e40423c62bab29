"""The in-memory visibility dataset: an MSv4-shaped ``xarray.Dataset``.

One dataset holds one field and one spectral window:

======================  =======================================  ==========================
variable                dims                                     meaning
======================  =======================================  ==========================
VISIBILITY              (time, baseline, frequency, polarization)  complex64, Jy
WEIGHT                  (time, baseline, frequency, polarization)  float32, 1/Jy^2
FLAG                    (time, baseline, frequency, polarization)  bool, True = bad
UVW                     (time, baseline, uvw_label)              float64, metres, J2000,
                                                                 position(ant2) - position(ant1)
ANTENNA_POSITION        (antenna, xyz_label)                     float64, ITRF metres
DISH_DIAMETER           (antenna,)                               float64, metres
CHANNEL_WIDTH           (frequency,)                             float64, Hz
======================  =======================================  ==========================

Coordinates: ``time`` (MS TIME convention: UTC seconds since MJD 0, integration centre),
``frequency`` (Hz), ``polarization`` (e.g. ``["XX", "XY", "YX", "YY"]``), ``baseline_antenna1``
and ``baseline_antenna2`` (on ``baseline``), ``antenna_name`` (on ``antenna``).

Attributes: ``phase_center`` ([ra, dec] radians, J2000), ``field_name``, ``telescope_name``,
``integration_time`` (s), ``site`` ([lon_deg, lat_deg, height_m] of the array reference).
Other data columns (``MODEL_DATA``, ``CORRECTED_DATA``) use the ``VISIBILITY`` dims.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    import xarray as xr

VIS_DIMS = ("time", "baseline", "frequency", "polarization")
UVW_DIMS = ("time", "baseline", "uvw_label")

#: MS POLARIZATION::CORR_TYPE codes (casacore Stokes enum).
CORR_CODES = {
    "I": 1, "Q": 2, "U": 3, "V": 4,
    "RR": 5, "RL": 6, "LR": 7, "LL": 8,
    "XX": 9, "XY": 10, "YX": 11, "YY": 12,
}
CORR_NAMES = {v: k for k, v in CORR_CODES.items()}

#: Data columns (MS name -> dataset variable).
DATA_COLUMNS = {"DATA": "VISIBILITY", "MODEL_DATA": "MODEL_DATA", "CORRECTED_DATA": "CORRECTED_DATA"}


def column_variable(column: str) -> str:
    """Dataset variable that holds MS data column ``column`` (``DATA`` -> ``VISIBILITY``)."""
    return DATA_COLUMNS.get(column.upper(), column.upper())


def baseline_pairs(nant: int, autocorrelations: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Antenna index pairs (a1 < a2, or a1 <= a2 with autocorrelations), MS order."""
    a1, a2 = np.triu_indices(nant, k=0 if autocorrelations else 1)
    return a1.astype(np.int32), a2.astype(np.int32)


def make_dataset(
    *,
    time: np.ndarray,
    frequency: np.ndarray,
    antenna1: np.ndarray,
    antenna2: np.ndarray,
    uvw: np.ndarray,
    antenna_position: np.ndarray,
    antenna_name: Sequence[str],
    phase_center: tuple[float, float],
    visibility: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    flag: np.ndarray | None = None,
    polarization: Sequence[str] = ("XX", "XY", "YX", "YY"),
    channel_width: np.ndarray | None = None,
    dish_diameter: np.ndarray | float = 15.0,
    integration_time: float | None = None,
    telescope_name: str = "unknown",
    field_name: str = "field",
    site: tuple[float, float, float] | None = None,
) -> xr.Dataset:
    """Assemble a visibility dataset, filling VISIBILITY with zeros, WEIGHT with ones, FLAG False."""
    time = np.asarray(time, dtype=np.float64)
    frequency = np.asarray(frequency, dtype=np.float64)
    pols = list(polarization)
    shape = (time.size, len(antenna1), frequency.size, len(pols))
    if visibility is None:
        visibility = np.zeros(shape, np.complex64)
    if weight is None:
        weight = np.ones(shape, np.float32)
    if flag is None:
        flag = np.zeros(shape, bool)
    if channel_width is None:
        channel_width = np.full(frequency.size, np.diff(frequency).mean() if frequency.size > 1 else 1e6)
    nant = len(antenna_name)
    dish = np.broadcast_to(np.asarray(dish_diameter, np.float64), (nant,)).copy()
    if integration_time is None:
        integration_time = float(np.median(np.diff(time))) if time.size > 1 else 1.0
    import xarray as xr

    ds = xr.Dataset(
        data_vars={
            "VISIBILITY": (VIS_DIMS, np.asarray(visibility, np.complex64)),
            "WEIGHT": (VIS_DIMS, np.broadcast_to(np.asarray(weight, np.float32), shape)),
            "FLAG": (VIS_DIMS, np.broadcast_to(np.asarray(flag, bool), shape)),
            "UVW": (UVW_DIMS, np.asarray(uvw, np.float64)),
            "ANTENNA_POSITION": (("antenna", "xyz_label"), np.asarray(antenna_position, np.float64)),
            "DISH_DIAMETER": (("antenna",), dish),
            "CHANNEL_WIDTH": (("frequency",), np.asarray(channel_width, np.float64)),
        },
        coords={
            "time": time,
            "frequency": frequency,
            "polarization": pols,
            "baseline_antenna1": (("baseline",), np.asarray(antenna1, np.int32)),
            "baseline_antenna2": (("baseline",), np.asarray(antenna2, np.int32)),
            "antenna_name": (("antenna",), [str(n) for n in antenna_name]),
            "uvw_label": ["u", "v", "w"],
            "xyz_label": ["x", "y", "z"],
        },
        attrs={
            "phase_center": [float(phase_center[0]), float(phase_center[1])],
            "field_name": field_name,
            "telescope_name": telescope_name,
            "integration_time": float(integration_time),
            "site": list(site) if site is not None else [],
        },
    )
    check_dataset(ds)
    return ds


def check_dataset(ds: xr.Dataset, source: str = "dataset") -> None:
    """Raise a :class:`UsageError` naming ``source`` if ``ds`` breaks the layout above."""
    problems = []
    for name in ("VISIBILITY", "WEIGHT", "FLAG"):
        if name not in ds:
            problems.append(f"missing variable {name}")
        elif ds[name].dims != VIS_DIMS:
            problems.append(f"{name} has dims {ds[name].dims}, expected {VIS_DIMS}")
    if "UVW" not in ds:
        problems.append("missing variable UVW")
    elif ds["UVW"].dims != UVW_DIMS:
        problems.append(f"UVW has dims {ds['UVW'].dims}, expected {UVW_DIMS}")
    for name in ("baseline_antenna1", "baseline_antenna2", "antenna_name"):
        if name not in ds.coords:
            problems.append(f"missing coordinate {name}")
    if "phase_center" not in ds.attrs:
        problems.append("missing attribute phase_center")
    if problems:
        raise UsageError(f"{source} is not a radioflow visibility dataset: " + "; ".join(problems) + ".")
