"""Observations: sample times (hour-angle range or start + duration), frequencies and UVW.

UVW follow CONVENTIONS.md: position(ANTENNA2) − position(ANTENNA1) in the J2000 frame of the
phase centre (u east, v north, w towards the source). Earth rotation uses the IAU 2006/2000A
celestial-to-terrestrial matrix from ERFA (UT1 = UTC and zero polar motion, as casacore does
without IERS tables), vectorised over all times at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .telescopes import Layout

SECONDS_PER_DAY = 86400.0
SIDEREAL_RATE = 1.002737909350795  # sidereal seconds per UT1 second


@dataclass(frozen=True)
class Observation:
    """Sample times (UTC seconds since MJD 0, integration centres), channel frequencies (Hz)."""

    ra: float
    dec: float
    times: np.ndarray
    frequencies: np.ndarray
    channel_width: np.ndarray
    integration_time: float

    @property
    def phase_center(self) -> tuple[float, float]:
        """(RA, Dec) in radians."""
        return (self.ra, self.dec)


def frequencies(freq_min: float, freq_max: float, nchan: int) -> tuple[np.ndarray, np.ndarray]:
    """Channel centres from ``freq_min`` to ``freq_max`` inclusive and their widths (Hz)."""
    if nchan < 1:
        raise UsageError(f"The number of channels must be at least 1, got {nchan}.")
    if freq_min <= 0 or freq_max < freq_min:
        raise UsageError(f"Need 0 < freq_min ≤ freq_max, got freq_min={freq_min} Hz, freq_max={freq_max} Hz.")
    if nchan == 1:
        width = freq_max - freq_min if freq_max > freq_min else 1e6
        return np.array([0.5 * (freq_min + freq_max)]), np.array([width])
    freq = np.linspace(freq_min, freq_max, nchan)
    return freq, np.full(nchan, freq[1] - freq[0])


def _mjd_seconds(iso: str) -> float:
    from astropy.time import Time

    try:
        return float(Time(iso, scale="utc").mjd * SECONDS_PER_DAY)
    except ValueError as exc:
        raise UsageError(f"Cannot read start time '{iso}': {exc}.") from None


def _gmst_rad(mjd_seconds: np.ndarray) -> np.ndarray:
    import erfa

    days = np.asarray(mjd_seconds) / SECONDS_PER_DAY
    jd1 = np.full_like(days, 2400000.5)
    return erfa.gmst06(jd1, days, jd1, days)


def hour_angle_times(ra: float, lon_deg: float, ha_start: float, ha_end: float, ntimes: int,
                     date: str = "2025-01-01") -> np.ndarray:
    """UTC times (MJD seconds) on ``date`` at which the source has hour angles ha_start..ha_end (rad)."""
    if ntimes < 1:
        raise UsageError(f"ntimes must be at least 1, got {ntimes}.")
    t0 = _mjd_seconds(f"{date}T00:00:00")
    lst0 = float(_gmst_rad(np.array([t0]))[0]) + math.radians(lon_deg)
    has = np.linspace(ha_start, ha_end, ntimes) if ntimes > 1 else np.array([0.5 * (ha_start + ha_end)])
    transit = ((ra - lst0) % (2 * math.pi)) / (2 * math.pi) * SECONDS_PER_DAY / SIDEREAL_RATE
    return t0 + transit + has / (2 * math.pi) * SECONDS_PER_DAY / SIDEREAL_RATE


def make_observation(
    *,
    ra: float,
    dec: float,
    layout: Layout,
    freq_min: float,
    freq_max: float,
    nchan: int,
    ha_range: tuple[float, float] | None = None,
    ntimes: int | None = None,
    start: str | None = None,
    duration: float | None = None,
    integration: float | None = None,
    date: str = "2025-01-01",
) -> Observation:
    """An observation by hour-angle range (radians, with ``ntimes``) or start + duration + integration (s)."""
    freq, width = frequencies(freq_min, freq_max, nchan)
    if not -math.pi / 2 <= dec <= math.pi / 2:
        raise UsageError(f"Declination {math.degrees(dec)}° is outside −90°..+90°.")
    if start is not None:
        if not duration or not integration or duration <= 0 or integration <= 0:
            raise UsageError("A start time needs a positive duration and integration time (seconds).")
        if integration > duration:
            raise UsageError(f"The integration time ({integration} s) is longer than the duration ({duration} s).")
        n = max(1, int(round(duration / integration)))
        times = _mjd_seconds(start) + (np.arange(n) + 0.5) * integration
        tint = float(integration)
    else:
        ha_range = ha_range if ha_range is not None else (-math.pi / 6, math.pi / 6)
        ntimes = ntimes if ntimes is not None else 5
        times = hour_angle_times(ra, layout.site[0], ha_range[0], ha_range[1], ntimes, date)
        tint = float(integration) if integration else (
            float(np.diff(times)[0]) if ntimes > 1 else 10.0)
    return Observation(ra=ra, dec=dec, times=times, frequencies=freq, channel_width=width,
                       integration_time=tint)


def celestial_rotation(times: np.ndarray) -> np.ndarray:
    """ITRF → celestial (GCRS ≈ J2000) rotation matrices ``(ntime, 3, 3)`` at UTC MJD seconds."""
    import erfa
    from astropy.time import Time

    t = Time(np.asarray(times) / SECONDS_PER_DAY, format="mjd", scale="utc")
    tt = t.tt
    c2t = erfa.c2t06a(tt.jd1, tt.jd2, t.jd1, t.jd2, 0.0, 0.0)  # UT1 = UTC, no polar motion
    return np.swapaxes(c2t, -1, -2)


def uvw_basis(ra: float, dec: float) -> np.ndarray:
    """Rows: unit vectors u (east), v (north), w (towards the phase centre) in J2000 Cartesian."""
    sa, ca, sd, cd = math.sin(ra), math.cos(ra), math.sin(dec), math.cos(dec)
    return np.array([[-sa, ca, 0.0], [-sd * ca, -sd * sa, cd], [cd * ca, cd * sa, sd]])


def antenna_uvw(itrf: np.ndarray, times: np.ndarray, ra: float, dec: float) -> np.ndarray:
    """Per-antenna UVW ``(ntime, nant, 3)`` in metres (relative to the array mean)."""
    rel = itrf - itrf.mean(axis=0)
    rot = celestial_rotation(times)  # (t, 3, 3)
    basis = uvw_basis(ra, dec)
    proj = basis @ rot  # (t, 3, 3): ITRF -> uvw per time
    return np.einsum("tij,aj->tai", proj, rel)


def baseline_uvw(itrf: np.ndarray, times: np.ndarray, ra: float, dec: float,
                 ant1: np.ndarray, ant2: np.ndarray) -> np.ndarray:
    """Baseline UVW ``(ntime, nbaseline, 3)``: position(ant2) − position(ant1), J2000, metres."""
    auvw = antenna_uvw(itrf, times, ra, dec)
    return auvw[:, ant2, :] - auvw[:, ant1, :]
