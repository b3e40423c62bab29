"""StEFCal gain solver: exact recovery, Cramér–Rao efficiency, modes, flags, apply, storage, plot."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from radioflow.errors import UsageError
from radioflow.science.calibrate import (
    calibrate_dataset,
    correct,
    corrupt,
    solutions_from_dataset,
    solutions_to_dataset,
    solve_gains,
)
from radioflow.science.corrupt import apply_gains, random_gains
from radioflow.science.gainplot import plot_gains
from radioflow.vis.schema import baseline_pairs, make_dataset


def point_source_model(nant, ntime, nchan, ncorr=1, seed=0):
    """Visibilities of three point sources on a random 2-km array rotating with time."""
    rng = np.random.default_rng(seed)
    a1, a2 = baseline_pairs(nant)
    pos = rng.uniform(-1000, 1000, (nant, 2))
    u = (pos[a2] - pos[a1]) / 3.0  # wavelengths at 100 MHz
    l, m = rng.uniform(-0.02, 0.02, (2, 3))
    flux = np.array([1.0, 0.6, 0.4])
    rot = np.linspace(0, 0.5, ntime)[:, None]
    uu = u[:, 0] * np.cos(rot) - u[:, 1] * np.sin(rot)
    vv = u[:, 0] * np.sin(rot) + u[:, 1] * np.cos(rot)
    scale = 1 + 0.05 * np.arange(nchan)  # frequency scaling of uv
    phase = 2j * np.pi * (uu[..., None, None] * l + vv[..., None, None] * m) * scale[:, None]
    model = (flux * np.exp(phase)).sum(-1)  # (time, baseline, chan)
    pol = np.array([1.0, 0.05, 0.03, 0.9])[:ncorr] if ncorr == 4 else np.ones(ncorr)
    return model[..., None] * pol, a1, a2


def phase_error(solved, true, refant=0):
    """Phase difference after referencing both to ``refant`` (radians), shape of ``solved``."""
    ref = true[:, refant : refant + 1]
    return np.angle(solved * np.conj(true) * ref / np.abs(ref))


def test_noise_free_phase_only_recovers_injected_phases():
    nant, ntime, nchan, ti, fi = 30, 24, 4, 4, 2
    model, a1, a2 = point_source_model(nant, ntime, nchan)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, time_interval=ti, freq_interval=fi, seed=2)
    vis = apply_gains(model, g, a1, a2).astype(np.complex64)
    sol = solve_gains(vis, model, None, None, a1, a2, nant, time_interval=ti, freq_interval=fi, mode="phase")
    assert sol.gains.shape == (6, nant, 2, 1)
    assert sol.converged == 1.0 and sol.iterations.max() < 100
    np.testing.assert_allclose(np.abs(sol.gains), 1.0, atol=1e-12)
    assert np.all(np.angle(sol.gains[:, 0]) == 0)
    err = phase_error(sol.gains, g[::ti, :, ::fi])
    assert np.sqrt(np.mean(err**2)) < 1e-6


def test_partial_last_intervals_are_solved():
    nant, ntime, nchan, ti, fi = 10, 10, 5, 4, 2  # intervals of 4+4+2 times and 2+2+1 channels
    model, a1, a2 = point_source_model(nant, ntime, nchan, ncorr=2, seed=9)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, amp_rms=0.1, time_interval=ti, freq_interval=fi, seed=1)
    vis = apply_gains(model, g, a1, a2)
    sol = solve_gains(vis, model, None, None, a1, a2, nant, time_interval=ti, freq_interval=fi, mode="complex")
    assert sol.gains.shape == (3, nant, 3, 1)
    np.testing.assert_allclose(np.abs(sol.gains), np.abs(g[::ti, :, ::fi]), rtol=1e-7)
    assert np.sqrt(np.mean(phase_error(sol.gains, g[::ti, :, ::fi]) ** 2)) < 1e-7
    np.testing.assert_allclose(correct(vis, sol.gains, a1, a2, ti, fi), model, rtol=1e-6)  # reference phase cancels


def fisher_phase_crb(model, weight, a1, a2, nant, ti, refant=0):
    """Mean Cramér–Rao variance of the referenced phases of phase-only scalar gains.

    With weights w = 1/sigma^2 per real/imaginary part, dV_pq/dphi_p = i V_pq, so the Fisher
    matrix of an interval is the weighted graph Laplacian F_pp = Σ_q W_pq, F_pq = -W_pq with
    W_pq = Σ w |M_pq|^2 |g_p|^2 |g_q|^2 (|g| = 1). Fixing phi_ref = 0 removes its row/column;
    the bound is the diagonal of the inverse of the remaining matrix.
    """
    W = (weight * np.abs(model) ** 2).sum(axis=(2, 3))
    nst = W.shape[0] // ti
    W = W.reshape(nst, ti, -1).sum(1)
    F = np.zeros((nst, nant, nant))
    F[:, a1, a2] = -W
    F[:, a2, a1] = -W
    F[:, np.arange(nant), np.arange(nant)] = -F.sum(2)
    keep = np.delete(np.arange(nant), refant)
    cov = np.linalg.inv(F[:, keep][:, :, keep])
    return np.mean(np.diagonal(cov, axis1=1, axis2=2))


@pytest.mark.parametrize("seed", [5, 6])
def test_phase_only_noise_reaches_cramer_rao_bound(seed):
    nant, ntime, nchan, ti = 30, 256, 4, 4  # 64 intervals x 29 antennas
    model, a1, a2 = point_source_model(nant, ntime, nchan, seed=seed)
    rng = np.random.default_rng(seed)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, time_interval=ti, seed=seed + 10)
    sigma = np.broadcast_to(np.array([0.2, 0.3, 0.4, 0.6])[None, None, :, None], model.shape)
    noise = (rng.standard_normal(model.shape) + 1j * rng.standard_normal(model.shape)) * sigma
    vis = apply_gains(model, g, a1, a2) + noise
    weight = 1.0 / sigma**2
    crb = np.sqrt(fisher_phase_crb(model, weight, a1, a2, nant, ti))
    sol = solve_gains(vis, model, weight, None, a1, a2, nant, time_interval=ti, mode="phase")
    assert sol.converged == 1.0
    rms = np.sqrt(np.mean(phase_error(sol.gains, g[::ti, :, :1])[:, 1:] ** 2))
    assert 0.005 < crb < 0.05  # high-SNR regime where ML is efficient
    assert rms / crb == pytest.approx(1.0, abs=0.06)
    assert sol.chi2 == pytest.approx(1.0, abs=0.02)
    # Ignoring the (varying) weights costs efficiency: the check above can tell the difference.
    unweighted = solve_gains(vis, model, None, None, a1, a2, nant, time_interval=ti, mode="phase")
    rms_u = np.sqrt(np.mean(phase_error(unweighted.gains, g[::ti, :, :1])[:, 1:] ** 2))
    assert rms_u / crb > 1.15


def test_complex_mode_recovers_amplitude_and_phase():
    nant, ntime, nchan, ti = 20, 12, 3, 3
    model, a1, a2 = point_source_model(nant, ntime, nchan, seed=3)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, amp_rms=0.2, time_interval=ti, freq_interval=1, seed=4)
    vis = apply_gains(model, g, a1, a2)
    sol = solve_gains(vis, model, None, None, a1, a2, nant, time_interval=ti, freq_interval=1, mode="complex")
    true = g[::ti]
    assert sol.gains.shape == true.shape and sol.converged == 1.0
    np.testing.assert_allclose(np.abs(sol.gains), np.abs(true), rtol=1e-7)
    assert np.sqrt(np.mean(phase_error(sol.gains, true) ** 2)) < 1e-7
    assert sol.chi2 < 1e-10


def test_diag_mode_solves_each_receptor():
    nant, ntime, nchan, ti = 16, 8, 2, 4
    model, a1, a2 = point_source_model(nant, ntime, nchan, ncorr=4, seed=8)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, amp_rms=0.1, time_interval=ti, npol=2, seed=9)
    vis = apply_gains(model, g, a1, a2)
    sol = solve_gains(vis, model, None, None, a1, a2, nant, time_interval=ti, mode="diag", refant=3)
    true = g[::ti, :, :1]
    assert sol.gains.shape == (2, nant, 1, 2)
    np.testing.assert_allclose(np.abs(sol.gains), np.abs(true), rtol=1e-7)
    assert np.sqrt(np.mean(phase_error(sol.gains, true, refant=3) ** 2)) < 1e-7
    assert np.all(np.angle(sol.gains[:, 3]) == 0)
    ph = solve_gains(vis, model, None, None, a1, a2, nant, time_interval=ti, mode="diag_phase", refant=3)
    np.testing.assert_allclose(np.abs(ph.gains), 1.0, atol=1e-12)
    assert np.sqrt(np.mean(phase_error(ph.gains, true, refant=3) ** 2)) < 0.05  # amplitudes not modelled


def test_flags_exclude_data_and_flag_dead_antennas():
    nant, ntime, nchan, ti = 12, 8, 2, 4
    model, a1, a2 = point_source_model(nant, ntime, nchan, seed=12)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, time_interval=ti, seed=13)
    vis = apply_gains(model, g, a1, a2)
    flag = np.zeros(vis.shape, bool)
    dead = (a1 == 5) | (a2 == 5)
    flag[:ti, dead] = True  # antenna 5 has no data in the first interval
    flag[ti:, 7, :, :] = True  # one baseline flagged in the second
    clean = solve_gains(vis, model, None, flag, a1, a2, nant, time_interval=ti)
    assert clean.flags[:, :, 0, 0].sum() == 1 and clean.flags[0, 5, 0, 0]
    assert clean.gains[0, 5, 0, 0] == 1.0
    ok = ~clean.flags
    assert np.sqrt(np.mean(phase_error(clean.gains, g[::ti, :, :1])[ok] ** 2)) < 1e-7

    garbage = vis.copy()
    rng = np.random.default_rng(0)
    garbage[flag] = 1e6 * (rng.standard_normal(flag.sum()) + 1j)
    garbage[ti:, 7, 0, 0] = np.nan
    zero_weight = np.where(flag, 0.0, 1.0)
    for kwargs in ({"weight": None, "flag": flag}, {"weight": zero_weight, "flag": None}):
        sol = solve_gains(garbage, model, kwargs["weight"], kwargs["flag"], a1, a2, nant, time_interval=ti)
        np.testing.assert_allclose(sol.gains, clean.gains, atol=1e-12)
        assert np.array_equal(sol.flags, clean.flags)


def test_flagged_reference_antenna_falls_back_to_first_with_data():
    nant, ntime, nchan = 8, 2, 1
    model, a1, a2 = point_source_model(nant, ntime, nchan, seed=1)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, seed=2)
    vis = apply_gains(model, g, a1, a2)
    flag = np.zeros(vis.shape, bool)
    flag[0][(a1 == 2) | (a2 == 2)] = True
    sol = solve_gains(vis, model, None, flag, a1, a2, nant, refant=2)
    assert sol.flags[0, 2, 0, 0] and not sol.flags[1].any()
    assert np.angle(sol.gains[0, 0, 0, 0]) == 0 and np.angle(sol.gains[1, 2, 0, 0]) == 0
    assert np.sqrt(np.mean(phase_error(sol.gains[:1], g[:1], refant=0)[0, [0, 1, 3, 4, 5, 6, 7]] ** 2)) < 1e-7


def test_correct_inverts_corrupt():
    nant, ntime, nchan, ti, fi = 9, 10, 6, 3, 4
    model, a1, a2 = point_source_model(nant, ntime, nchan, ncorr=4, seed=4)
    gsol = random_gains(nant, 4, 2, phase_rms=2.0, amp_rms=0.3, npol=2, seed=5)  # 4 x 2 intervals
    vis = model.astype(np.complex64)
    out = correct(corrupt(vis, gsol, a1, a2, ti, fi), gsol, a1, a2, ti, fi)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, vis, rtol=1e-5, atol=1e-6)
    full = gsol[np.arange(ntime) // ti][:, :, np.arange(nchan) // fi]
    np.testing.assert_allclose(corrupt(vis, gsol, a1, a2, ti, fi), apply_gains(vis, full, a1, a2), rtol=1e-6)
    np.testing.assert_allclose(correct(apply_gains(vis, full, a1, a2), gsol, a1, a2), vis, rtol=1e-5, atol=1e-6)
    with pytest.raises(UsageError, match="time_interval=2"):
        correct(vis, gsol, a1, a2, 2, fi)


def _solution(nant=5):
    model, a1, a2 = point_source_model(nant, 6, 4, ncorr=2, seed=2)
    g = random_gains(nant, 6, 4, phase_rms=1.0, amp_rms=0.1, time_interval=2, freq_interval=2, npol=2, seed=3)
    flag = np.zeros(model.shape, bool)
    flag[:2][:, (a1 == 1) | (a2 == 1)] = True
    return solve_gains(apply_gains(model, g, a1, a2), model, None, flag, a1, a2, nant, time_interval=2, freq_interval=2, mode="diag")


@pytest.mark.parametrize("vis_dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("ncorr,npol", [(4, 2), (4, 1), (2, 2), (1, 1)])
def test_interval_gains_kernel_matches_numpy_products(vis_dtype, ncorr, npol):
    from radioflow.science.calibrate import _gain_products

    rng = np.random.default_rng(7)
    a1, a2 = np.triu_indices(6, 1)
    vis = (rng.normal(size=(9, a1.size, 10, ncorr)) + 1j * rng.normal(size=(9, a1.size, 10, ncorr))).astype(vis_dtype)
    gains = rng.normal(size=(3, 6, 4, npol)) + 1j * rng.normal(size=(3, 6, 4, npol))
    gains[0, 2] = 0
    prod = _gain_products(vis, gains, a1, a2, 3, 3)
    ref_corrupt = (vis * prod).astype(vis_dtype)
    ref_correct = vis.copy()
    np.divide(vis, prod, out=ref_correct, where=prod != 0, casting="unsafe")
    for got, ref in ((corrupt(vis, gains, a1, a2, 3, 3), ref_corrupt), (correct(vis, gains, a1, a2, 3, 3), ref_correct)):
        assert got.dtype == vis_dtype
        np.testing.assert_allclose(got, ref, rtol=1e-12 if vis_dtype == np.complex128 else 1e-6)


def test_solutions_dataset_round_trip(tmp_path):
    sol = _solution()
    times = 4.9e9 + 10.0 * np.arange(6)
    freqs = 1e8 + 1e6 * np.arange(4)
    ds = solutions_to_dataset(sol, times, freqs, [f"S{i}" for i in range(5)])
    assert ds["GAIN"].dims == ("time", "antenna", "frequency", "polarization")
    np.testing.assert_allclose(ds["time"].values, times[::2] + 5.0)
    np.testing.assert_allclose(ds["frequency"].values, freqs[::2] + 0.5e6)
    assert list(ds["polarization"].values) == ["X", "Y"] and bool(ds["FLAG"].values[0, 1, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Zarr's unstable fixed-width string dtype warning
        ds.to_zarr(tmp_path / "gains.zarr", zarr_format=3, consolidated=False)
    back_ds = xr.open_zarr(tmp_path / "gains.zarr", consolidated=False).load()
    assert [str(a) for a in back_ds["antenna_name"].values] == [f"S{i}" for i in range(5)]
    for back in (solutions_from_dataset(ds), solutions_from_dataset(back_ds)):
        assert np.array_equal(back.gains, sol.gains) and np.array_equal(back.flags, sol.flags)
        assert np.array_equal(back.iterations, sol.iterations)
        assert (back.mode, back.refant, back.time_interval, back.freq_interval) == ("diag", 0, 2, 2)
        assert back.chi2 == sol.chi2 and back.converged == sol.converged
    with pytest.raises(UsageError, match="GAIN"):
        solutions_from_dataset(xr.Dataset())


def test_calibrate_dataset_corrects_and_flags():
    nant, ntime, nchan = 10, 6, 3
    model, a1, a2 = point_source_model(nant, ntime, nchan, ncorr=4, seed=6)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, time_interval=3, seed=7)
    flag = np.zeros(model.shape, bool)
    flag[:3][:, (a1 == 4) | (a2 == 4)] = True
    ds = make_dataset(
        time=4.9e9 + 10.0 * np.arange(ntime), frequency=1e8 + 1e6 * np.arange(nchan), antenna1=a1, antenna2=a2,
        uvw=np.zeros((ntime, a1.size, 3)), antenna_position=np.zeros((nant, 3)),
        antenna_name=[f"A{i}" for i in range(nant)], phase_center=(0.0, -0.5),
        visibility=apply_gains(model, g, a1, a2), flag=flag,
    )
    ds["MODEL_DATA"] = (ds["VISIBILITY"].dims, model.astype(np.complex64))
    sol, out = calibrate_dataset(ds, "MODEL_DATA", time_interval=3, mode="phase")
    assert sol.flags[0, 4, 0, 0] and sol.flags.sum() == 1
    ok = ~out["FLAG"].values
    assert np.array_equal(ok, ~flag)  # flagged gains only touch already-flagged data here
    np.testing.assert_allclose(out["CORRECTED_DATA"].values[ok], model[ok], atol=2e-6)
    model_ds = ds.drop_vars("MODEL_DATA").assign(VISIBILITY=(ds["VISIBILITY"].dims, model.astype(np.complex64)))
    sol2, _ = calibrate_dataset(ds, model_ds, time_interval=3)
    np.testing.assert_allclose(sol2.gains, sol.gains, atol=1e-12)
    with pytest.raises(UsageError, match="NOPE"):
        calibrate_dataset(ds, "NOPE")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"mode": "amp"}, "mode"), ({"refant": 99}, "refant"), ({"time_interval": 0}, "time_interval"),
     ({"freq_interval": 2.5}, "freq_interval"), ({"tol": 0}, "tol")],
)
def test_bad_parameters_raise_usage_errors(kwargs, match):
    model, a1, a2 = point_source_model(4, 2, 1)
    with pytest.raises(UsageError, match=match):
        solve_gains(model, model, None, None, a1, a2, 4, **kwargs)


def test_shape_mismatch_raises_usage_error():
    model, a1, a2 = point_source_model(4, 2, 1)
    with pytest.raises(UsageError, match="model"):
        solve_gains(model, model[:1], None, None, a1, a2, 4)
    with pytest.raises(UsageError, match="ant1"):
        solve_gains(model, model, None, None, a1[:-1], a2, 4)


def test_plot_gains_writes_png(tmp_path):
    sol = _solution(nant=6)
    ds = solutions_to_dataset(sol, 4.9e9 + 10.0 * np.arange(6), 1e8 + 1e6 * np.arange(4), [f"S{i}" for i in range(6)])
    path = plot_gains(ds, tmp_path / "plots" / "gains.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["gains.png"]
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.shape[0] == 4 * 260 and img.shape[1] == 2 * 550  # 4 rows (time + frequency), 2 receptors
    assert img[..., :3].std() > 0.05


def test_iteration_cap_reports_unconverged_intervals():
    nant, ntime, nchan = 20, 4, 1
    model, a1, a2 = point_source_model(nant, ntime, nchan, seed=2)
    g = random_gains(nant, ntime, nchan, phase_rms=1.0, seed=3)
    vis = apply_gains(model, g, a1, a2)
    capped = solve_gains(vis, model, None, None, a1, a2, nant, maxiter=3)
    assert capped.converged == 0.0 and np.all(capped.iterations == 3)
    loose = solve_gains(vis, model, None, None, a1, a2, nant, tol=1e-3)
    tight = solve_gains(vis, model, None, None, a1, a2, nant, tol=1e-10)
    assert loose.converged == tight.converged == 1.0
    assert loose.iterations.max() < tight.iterations.max()
    err = [np.sqrt(np.mean(phase_error(s.gains, g) ** 2)) for s in (loose, tight)]
    assert err[1] < 1e-8 < 1e-5 < err[0] < 1e-2
