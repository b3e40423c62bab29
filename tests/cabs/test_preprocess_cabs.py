"""Built-in flag / average / subtract / apply cabs on an MS written by ``radioflow simulate``:
the physics each step promises, on a local MS (in place) and on Zarr in S3 (delta overlay)."""
from __future__ import annotations

import casacore.tables as ct
import numpy as np
import pytest
from cab_sim import NOISE, inject_rfi
from cab_sim import copy_ms as _copy

from radioflow.cabs import preprocess
from radioflow.science.calibrate import GainSolution, corrupt, solutions_to_dataset
from radioflow.science.corrupt import random_gains
from radioflow.science.h5parm import write_h5parm
from radioflow.vis.io import open_dataset, write_dataset
from radioflow.vis.ms import read_ms
from radioflow.vis.ms_columns import write_ms_columns


def test_flag_finds_injected_rfi(sim, tmp_path):
    ms = _copy(sim, "obs.ms", tmp_path)
    ds = read_ms(ms, columns=["DATA"])
    vis, rfi = inject_rfi(ds["VISIBILITY"].values)
    write_ms_columns(ms, {"DATA": vis})

    out = preprocess.flag(ms)
    assert out["dataset"] == ms
    flags = read_ms(ms, columns=["DATA"])["FLAG"].values[..., 0]
    assert flags[rfi].mean() > 0.95
    assert flags[~rfi].mean() < 0.01
    assert out["flagged_fraction"] == pytest.approx(flags.mean(), abs=1e-9)


def test_average_preserves_flux_and_reduces_rows(sim, tmp_path):
    ms = _copy(sim, "clean.ms", tmp_path)
    out = preprocess.average(ms, str(tmp_path / "avg.ms"), timestep=4, freqstep=4)
    with ct.table(ms, ack=False) as a, ct.table(out["msout"], ack=False) as b:
        assert a.nrows() == 4 * b.nrows()
    avg = read_ms(out["msout"], columns=["DATA"])
    assert avg.sizes["frequency"] == 8 and out["ntime"] == 10
    xx = avg["VISIBILITY"].values[..., 0]
    np.testing.assert_allclose(xx, 2.5, rtol=1e-5)   # a phase-centre source: flux kept exactly
    np.testing.assert_allclose(avg["WEIGHT"].values, 16.0)   # weights add
    orig = read_ms(ms, columns=["DATA"])
    np.testing.assert_allclose(avg["UVW"].values[0], orig["UVW"].values[:4].mean(axis=0), rtol=1e-9)


def test_subtract_leaves_the_noise(sim, tmp_path):
    ms = _copy(sim, "obs.ms", tmp_path)
    preprocess.subtract(ms, str(sim / "field.csv"), outcolumn="FIELD_RESIDUAL")
    before = read_ms(ms, columns=["FIELD_RESIDUAL"])["FIELD_RESIDUAL"].values[..., 0]
    assert np.std(before) > 10 * NOISE   # the bright off-field source dominates
    preprocess.subtract(ms, str(sim / "all.csv"))
    res = read_ms(ms, columns=["DATA"])["VISIBILITY"].values[..., 0]
    rms = np.sqrt(np.mean(np.abs(res) ** 2) / 2)   # per real/imag part
    assert rms == pytest.approx(NOISE, rel=0.03)


def _corrupted(sim, tmp_path):
    ms = _copy(sim, "clean.ms", tmp_path)
    ds = read_ms(ms, columns=["DATA"])
    truth = ds["VISIBILITY"].values
    a1, a2 = ds["baseline_antenna1"].values, ds["baseline_antenna2"].values
    g = random_gains(ds.sizes["antenna"], ds.sizes["time"], ds.sizes["frequency"], phase_rms=1.0, amp_rms=0.2,
                     npol=2, seed=3, time_interval=4)
    write_ms_columns(ms, {"DATA": corrupt(truth, g, a1, a2)})
    return ms, ds, truth, g


def test_apply_h5parm_restores_injected_gains(sim, tmp_path):
    ms, ds, truth, g = _corrupted(sim, tmp_path)
    centres = ds["time"].values.reshape(-1, 4).mean(axis=1)   # solution intervals, as DDECal writes them
    h5 = write_h5parm(tmp_path / "gains.h5", g[::4], centres, ds["frequency"].values,
                      list(ds["antenna_name"].values))
    preprocess.apply(ms, str(h5))
    corrected = read_ms(ms, columns=["CORRECTED_DATA"])["CORRECTED_DATA"].values
    assert np.max(np.abs(read_ms(ms, columns=["DATA"])["VISIBILITY"].values - truth)) > 1.0
    np.testing.assert_allclose(corrected, truth, atol=1e-4)


def test_apply_radioflow_solutions_on_s3_zarr_writes_a_delta(sim, tmp_path, s3_prefix):
    ms, ds, truth, g = _corrupted(sim, tmp_path)
    base = write_dataset(read_ms(ms, columns=["DATA"]), f"{s3_prefix}/obs.zarr")
    sol = GainSolution(gains=g[::4], flags=np.zeros(g[::4].shape, bool), iterations=np.zeros((10, 32, 2), int),
                       converged=1.0, chi2=1.0, mode="diag", refant=0, time_interval=4, freq_interval=1)
    sols = tmp_path / "sol.zarr"
    solutions_to_dataset(sol, ds["time"].values, ds["frequency"].values, ds["antenna_name"].values).to_zarr(
        sols, consolidated=False, zarr_format=2)
    out = preprocess.apply(base, str(sols))
    assert out["dataset"] == f"{s3_prefix}/obs-delta.zarr"
    merged = open_dataset(out["dataset"])
    np.testing.assert_allclose(merged["CORRECTED_DATA"].values, truth, atol=1e-4)
    assert "CORRECTED_DATA" not in open_dataset(base)


def test_subtract_with_solutions_removes_a_source_from_uncalibrated_data(sim, tmp_path):
    ms = _copy(sim, "obs.ms", tmp_path)
    ds = read_ms(ms, columns=["DATA"])
    a1, a2 = ds["baseline_antenna1"].values, ds["baseline_antenna2"].values
    g = random_gains(ds.sizes["antenna"], ds.sizes["time"], ds.sizes["frequency"], phase_rms=1.0, seed=8)
    write_ms_columns(ms, {"DATA": corrupt(ds["VISIBILITY"].values, g, a1, a2)})
    h5 = write_h5parm(tmp_path / "g.h5", g, ds["time"].values, ds["frequency"].values, list(ds["antenna_name"].values))
    preprocess.subtract(ms, str(sim / "all.csv"), outcolumn="PLAIN")
    preprocess.subtract(ms, str(sim / "all.csv"), outcolumn="CORRUPTED", solutions=str(h5))
    out = read_ms(ms, columns=["PLAIN", "CORRUPTED"])
    rms = {c: np.sqrt(np.mean(np.abs(out[c].values[..., 0]) ** 2) / 2) for c in ("PLAIN", "CORRUPTED")}
    assert rms["PLAIN"] > 10 * NOISE                     # the model without the gains does not fit
    assert rms["CORRUPTED"] == pytest.approx(NOISE, rel=0.03)
