"""Gain corruption and thermal noise."""
from __future__ import annotations

import numpy as np
import pytest

from radioflow.errors import UsageError
from radioflow.science.corrupt import add_noise, apply_gains, corrupt_dataset, noise_sigma, random_gains
from radioflow.vis.schema import baseline_pairs, make_dataset


def _dataset(nant=6, ntime=8, nchan=3, pols=("XX", "XY", "YX", "YY"), seed=0):
    rng = np.random.default_rng(seed)
    a1, a2 = baseline_pairs(nant)
    shape = (ntime, a1.size, nchan, len(pols))
    vis = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return make_dataset(
        time=4.9e9 + 10.0 * np.arange(ntime),
        frequency=1e8 + 1e6 * np.arange(nchan),
        antenna1=a1,
        antenna2=a2,
        uvw=np.zeros((ntime, a1.size, 3)),
        antenna_position=np.zeros((nant, 3)),
        antenna_name=[f"A{i}" for i in range(nant)],
        phase_center=(0.0, -0.5),
        visibility=vis,
        polarization=pols,
        channel_width=np.full(nchan, 1e6),
        integration_time=10.0,
    )


def test_random_gains_statistics_and_intervals():
    g = random_gains(400, 30, 8, phase_rms=1.0, time_interval=3, freq_interval=4, npol=2, seed=7)
    assert g.shape == (30, 400, 8, 2)
    np.testing.assert_allclose(np.abs(g), 1.0, atol=1e-12)
    # piecewise constant: identical within an interval, different across intervals
    assert np.array_equal(g[0], g[2]) and np.array_equal(g[:, :, 0], g[:, :, 3])
    assert not np.allclose(g[2], g[3]) and not np.allclose(g[:, :, 3], g[:, :, 4])
    draws = np.angle(g[::3, :, ::4])  # 10 x 400 x 2 x 2 independent draws, |phase| << pi mostly
    assert np.sqrt(np.mean(draws**2)) == pytest.approx(0.985, abs=0.03)  # 1 rad, wrapped tail
    assert np.array_equal(g, random_gains(400, 30, 8, time_interval=3, freq_interval=4, npol=2, seed=7))


def test_random_gains_amplitudes_lognormal():
    g = random_gains(500, 40, 1, phase_rms=0.1, amp_rms=0.05, seed=1)
    assert np.std(np.log(np.abs(g))) == pytest.approx(0.05, rel=0.03)
    assert np.std(np.angle(g)) == pytest.approx(0.1, rel=0.03)


def test_apply_gains_four_correlations_matches_formula():
    rng = np.random.default_rng(3)
    nant, ntime, nchan = 5, 4, 3
    a1, a2 = baseline_pairs(nant)
    vis = rng.standard_normal((ntime, a1.size, nchan, 4)) + 1j * rng.standard_normal((ntime, a1.size, nchan, 4))
    g = random_gains(nant, ntime, nchan, phase_rms=0.7, amp_rms=0.2, npol=2, seed=4)
    out = apply_gains(vis, g, a1, a2)
    for c, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        expect = g[:, a1][..., i] * vis[..., c] * np.conj(g[:, a2][..., j])
        np.testing.assert_allclose(out[..., c], expect, rtol=1e-12)
    # scalar gains apply to every correlation; a single time sample broadcasts over time
    gs = random_gains(nant, 1, nchan, phase_rms=0.7, seed=5)
    out = apply_gains(vis, gs, a1, a2)
    expect = gs[:, a1][..., :1] * vis * np.conj(gs[:, a2][..., :1])
    np.testing.assert_allclose(out, np.broadcast_to(expect, vis.shape), rtol=1e-12)


def test_apply_gains_rejects_mismatched_shapes():
    a1, a2 = baseline_pairs(4)
    vis = np.zeros((3, a1.size, 2, 2), np.complex64)
    with pytest.raises(UsageError, match="time"):
        apply_gains(vis, np.ones((2, 4, 2, 1), complex), a1, a2)
    with pytest.raises(UsageError, match="antenna 3"):
        apply_gains(vis, np.ones((3, 3, 2, 1), complex), a1, a2)


def test_corrupt_dataset_multiplies_by_gains():
    ds = _dataset()
    out, g = corrupt_dataset(ds, phase_rms=1.0, time_interval=2, seed=11)
    assert g.shape == (8, 6, 3, 1)
    a1, a2 = ds["baseline_antenna1"].values, ds["baseline_antenna2"].values
    ratio = out["VISIBILITY"].values / ds["VISIBILITY"].values
    np.testing.assert_allclose(ratio, (g[:, a1] * np.conj(g[:, a2]))[..., [0, 0, 0, 0]], rtol=2e-6)
    assert out["VISIBILITY"].dtype == np.complex64
    assert np.array_equal(ds["VISIBILITY"].values, _dataset()["VISIBILITY"].values)  # input untouched
    with pytest.raises(UsageError, match="MODEL_DATA"):
        corrupt_dataset(ds, column="MODEL_DATA")


def test_add_noise_sigma_and_weight():
    ds = _dataset(nant=12, ntime=20, nchan=4)
    out = add_noise(ds, sigma=0.3, seed=2)
    diff = (out["VISIBILITY"].values - ds["VISIBILITY"].values).astype(np.complex128)
    assert np.std(diff.real) == pytest.approx(0.3, rel=0.02)
    assert np.std(diff.imag) == pytest.approx(0.3, rel=0.02)
    assert abs(np.mean(diff.real * diff.imag)) < 0.01 * 0.09
    np.testing.assert_allclose(out["WEIGHT"].values, 1 / 0.09, rtol=1e-6)


def test_add_noise_from_sefd_radiometer_equation():
    ds = _dataset(nant=12, ntime=20, nchan=2)
    ds["CHANNEL_WIDTH"] = ("frequency", np.array([1e6, 4e6]))
    out = add_noise(ds, sefd=1000.0, seed=3)
    expect = np.array([1000 / np.sqrt(2 * 1e6 * 10.0), 1000 / np.sqrt(2 * 4e6 * 10.0)])
    np.testing.assert_allclose(noise_sigma(1000.0, np.array([1e6, 4e6]), 10.0), expect)
    assert expect[0] == pytest.approx(0.2236068, rel=1e-6)
    diff = (out["VISIBILITY"].values - ds["VISIBILITY"].values).astype(np.complex128)
    measured = diff.real.std(axis=(0, 1, 3))
    np.testing.assert_allclose(measured, expect, rtol=0.03)
    np.testing.assert_allclose(out["WEIGHT"].values[0, 0, :, 0], 1 / expect**2, rtol=1e-6)


def test_add_noise_needs_exactly_one_of_sigma_sefd():
    ds = _dataset()
    with pytest.raises(UsageError, match="exactly one"):
        add_noise(ds)
    with pytest.raises(UsageError, match="exactly one"):
        add_noise(ds, sigma=1.0, sefd=100.0)
    with pytest.raises(UsageError, match="sigma"):
        add_noise(ds, sigma=-1.0)
