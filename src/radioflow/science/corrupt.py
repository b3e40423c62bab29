"""Corrupt visibilities: per-antenna complex gains and thermal noise.

Data model, per correlation ``c = (i, j)`` of receptors ``i`` of antenna p and ``j`` of q::

    V_pq^c = g_p[i] · M_pq^c · conj(g_q[j])

Gains are arrays ``(time, antenna, frequency, receptor)``; ``receptor`` has length 1 (a scalar
gain applied to every correlation) or 2 (diagonal gains: X/Y or R/L). Correlations follow the
MS order: 4 correlations are ``XX XY YX YY`` (or ``RR RL LR LL``), 2 are the parallel hands
``XX YY`` and 1 is a single parallel hand.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import UsageError
from ..vis.schema import column_variable


def n_intervals(n: int, interval: int) -> int:
    """Number of solution/gain intervals of ``interval`` samples covering ``n`` samples."""
    return -(-n // interval)


def check_interval(value: int | None, n: int, name: str) -> int:
    """Validate an interval (samples per gain interval); ``None`` means the whole axis."""
    if value is None:
        return max(n, 1)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"Parameter '{name}' must be a positive integer number of samples, got {value!r}.")
    return int(value)


def receptor_index(ncorr: int, npol: int) -> tuple[np.ndarray, np.ndarray]:
    """Receptor of antenna p and of antenna q used by each of ``ncorr`` correlations."""
    if npol not in (1, 2):
        raise UsageError(f"Gains must have 1 (scalar) or 2 (diagonal) receptors, got {npol}.")
    if ncorr not in (1, 2, 4):
        raise UsageError(f"Visibilities must have 1, 2 or 4 correlations, got {ncorr}.")
    if npol == 1 or ncorr == 1:
        zero = np.zeros(ncorr, np.intp)
        return zero, zero
    if ncorr == 2:
        return np.array([0, 1]), np.array([0, 1])
    return np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])


def baseline_gains(gains: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, ncorr: int) -> np.ndarray:
    """``g_p[i] · conj(g_q[j])`` per (time, baseline, frequency, correlation) of ``gains``."""
    gains = np.asarray(gains)
    if gains.ndim != 4:
        raise UsageError(f"Gains must have dims (time, antenna, frequency, receptor), got shape {gains.shape}.")
    ip, iq = receptor_index(ncorr, gains.shape[3])
    gp = np.take(np.take(gains, ant1, axis=1), ip, axis=3)
    gq = np.take(np.take(gains, ant2, axis=1), iq, axis=3)
    return np.multiply(gp, gq.conj(), order="C")


def _check_vis_gains(vis: np.ndarray, gains: np.ndarray, ant1: np.ndarray, ant2: np.ndarray) -> None:
    if vis.ndim != 4:
        raise UsageError(f"Visibilities must have dims (time, baseline, frequency, correlation), got shape {vis.shape}.")
    if ant1.shape != (vis.shape[1],) or ant2.shape != (vis.shape[1],):
        raise UsageError(
            f"Antenna index arrays have shapes {ant1.shape} and {ant2.shape}; expected ({vis.shape[1]},), "
            "one entry per baseline of the visibilities."
        )
    if gains.ndim != 4:
        raise UsageError(f"Gains must have dims (time, antenna, frequency, receptor), got shape {gains.shape}.")
    for axis, name in ((0, "time"), (2, "frequency")):
        if gains.shape[axis] not in (1, vis.shape[axis]):
            raise UsageError(
                f"Gains have {gains.shape[axis]} {name} samples but the visibilities have {vis.shape[axis]}: "
                f"give one gain per {name} sample or a single one to broadcast."
            )
    top = int(max(ant1.max(initial=0), ant2.max(initial=0)))
    if top >= gains.shape[1]:
        raise UsageError(f"Baselines refer to antenna {top} but the gains cover only {gains.shape[1]} antennas.")


def apply_gains(vis: np.ndarray, gains: np.ndarray, ant1: np.ndarray, ant2: np.ndarray) -> np.ndarray:
    """Return ``g_p · vis · conj(g_q)`` (vectorised; gains broadcast over time/frequency of size 1)."""
    vis = np.asarray(vis)
    gains = np.asarray(gains)
    ant1 = np.asarray(ant1, np.intp)
    ant2 = np.asarray(ant2, np.intp)
    _check_vis_gains(vis, gains, ant1, ant2)
    out = np.multiply(vis, baseline_gains(gains, ant1, ant2, vis.shape[3]), order="C")
    return out.astype(vis.dtype if np.iscomplexobj(vis) else np.complex128, copy=False)


def random_gains(
    nant: int,
    ntime: int,
    nchan: int,
    *,
    phase_rms: float = 1.0,
    amp_rms: float = 0.0,
    time_interval: int = 1,
    freq_interval: int | None = None,
    npol: int = 1,
    seed: int | None = None,
) -> np.ndarray:
    """Random antenna gains ``(ntime, nant, nchan, npol)``, piecewise constant over intervals.

    Phases are Gaussian with ``phase_rms`` radians; amplitudes are log-normal,
    ``exp(N(0, amp_rms))`` (≈ 1 ± amp_rms for small values, never negative). One draw per
    ``time_interval`` samples × ``freq_interval`` channels (``None``: the whole band).
    """
    time_interval = check_interval(time_interval, ntime, "time_interval")
    freq_interval = check_interval(freq_interval, nchan, "freq_interval")
    if npol not in (1, 2):
        raise UsageError(f"Parameter 'npol' must be 1 (scalar gains) or 2 (diagonal gains), got {npol!r}.")
    if phase_rms < 0 or amp_rms < 0:
        raise UsageError(f"Parameters 'phase_rms' and 'amp_rms' must be >= 0, got {phase_rms!r} and {amp_rms!r}.")
    rng = np.random.default_rng(seed)
    shape = (n_intervals(ntime, time_interval), nant, n_intervals(nchan, freq_interval), npol)
    phase = rng.normal(0.0, phase_rms, shape)
    amp = np.exp(rng.normal(0.0, amp_rms, shape)) if amp_rms > 0 else 1.0
    g = amp * np.exp(1j * phase)
    tidx = np.arange(ntime) // time_interval
    fidx = np.arange(nchan) // freq_interval
    return g[tidx][:, :, fidx]


def _antennas(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, int]:
    return (
        ds["baseline_antenna1"].values.astype(np.intp),
        ds["baseline_antenna2"].values.astype(np.intp),
        ds.sizes["antenna"],
    )


def _data_variable(ds: xr.Dataset, column: str) -> str:
    var = column_variable(column)
    if var not in ds:
        raise UsageError(f"The dataset has no data column '{column}' (variable {var}); it has {sorted(map(str, ds.data_vars))}.")
    return var


def corrupt_dataset(
    ds: xr.Dataset,
    *,
    phase_rms: float = 1.0,
    amp_rms: float = 0.0,
    time_interval: int = 1,
    freq_interval: int | None = None,
    npol: int = 1,
    seed: int | None = None,
    column: str = "VISIBILITY",
) -> tuple[xr.Dataset, np.ndarray]:
    """Multiply ``column`` of ``ds`` by random antenna gains; return the new dataset and the gains."""
    var = _data_variable(ds, column)
    ant1, ant2, nant = _antennas(ds)
    gains = random_gains(
        nant, ds.sizes["time"], ds.sizes["frequency"], phase_rms=phase_rms, amp_rms=amp_rms,
        time_interval=time_interval, freq_interval=freq_interval, npol=npol, seed=seed,
    )
    out = ds.copy()
    out[var] = (ds[var].dims, apply_gains(ds[var].values, gains, ant1, ant2))
    return out, gains


def noise_sigma(sefd: float | np.ndarray, channel_width: np.ndarray, integration_time: float) -> np.ndarray:
    """Noise rms of the real (and of the imaginary) part of one visibility, per channel.

    Radiometer equation for one correlation of two antennas of equal system-equivalent flux
    density: ``sigma = SEFD / sqrt(2 Δν Δt)`` (Jy, Δν in Hz, Δt in s). The complex noise then
    has ``E|n|^2 = 2 sigma^2``.
    """
    return np.asarray(sefd, np.float64) / np.sqrt(2.0 * np.asarray(channel_width, np.float64) * integration_time)


def add_noise(
    ds: xr.Dataset,
    *,
    sigma: float | None = None,
    sefd: float | None = None,
    seed: int | None = None,
    column: str = "VISIBILITY",
) -> xr.Dataset:
    """Add complex Gaussian thermal noise to ``column`` and set ``WEIGHT = 1/sigma^2``.

    ``sigma`` is the rms of the real part (and, independently, of the imaginary part) of each
    visibility, in Jy. Alternatively give ``sefd`` (Jy) and sigma follows per channel from the
    radiometer equation (:func:`noise_sigma`) with ``CHANNEL_WIDTH`` and the dataset's
    ``integration_time``.
    """
    if (sigma is None) == (sefd is None):
        raise UsageError("add_noise needs exactly one of 'sigma' (Jy per real/imaginary part) or 'sefd' (Jy).")
    var = _data_variable(ds, column)
    if sigma is not None:
        if not sigma > 0:
            raise UsageError(f"Parameter 'sigma' must be > 0 Jy, got {sigma!r}.")
        sig = np.full(ds.sizes["frequency"], float(sigma))
    else:
        if sefd is None or not sefd > 0:
            raise UsageError(f"Parameter 'sefd' must be > 0 Jy, got {sefd!r}.")
        dt = float(ds.attrs.get("integration_time", 0.0))
        if not dt > 0:
            raise UsageError("add_noise with 'sefd' needs the dataset attribute 'integration_time' (s) > 0.")
        sig = noise_sigma(sefd, ds["CHANNEL_WIDTH"].values, dt)
    vis = ds[var].values
    rng = np.random.default_rng(seed)
    s = sig[None, None, :, None]
    noise = rng.standard_normal(vis.shape) * s + 1j * (rng.standard_normal(vis.shape) * s)
    out = ds.copy()
    out[var] = (ds[var].dims, (vis + noise).astype(vis.dtype if np.iscomplexobj(vis) else np.complex64))
    weight = np.broadcast_to((1.0 / s**2).astype(np.float32), vis.shape)
    out["WEIGHT"] = (ds[var].dims, np.array(weight))
    return out
