"""Calibration cabs on Zarr datasets in object storage: the base is never rewritten, model and
corrected data go into a delta overlay, and the corrected data are what calibration promises."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from radioflow.cabs import calibration, data, simulate, sky
from radioflow.vis.io import default_delta_url, open_dataset, write_dataset
from radioflow.vis.ms import read_ms


@pytest.fixture(scope="module")
def corrupted_ms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cal")
    cat = str(tmp / "sky.csv")
    sky.make_sky(cat, ra=0.0, dec=-30.0, radius=2.0, flux_limit=0.5, flux_max=3.0, nsources=6, ref_freq=1e8, seed=2)
    ms = simulate.simulate_window(str(tmp / "obs.ms"), sky=cat, frequency=1e8, channel_width=1e6, rmax=500.0,
                                  ntimes=6, phase_error=1.0, seed=5, true_gains=str(tmp / "truth.zarr"))["ms"]
    return ms, cat, str(tmp / "truth.zarr")


def _phase_rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.angle(a * np.conj(b)) ** 2)))


def test_predict_and_gaincal_on_s3_zarr_write_a_delta(corrupted_ms, s3_prefix):
    ms, cat, truth = corrupted_ms
    base = write_dataset(read_ms(ms, columns=["DATA"]), f"{s3_prefix}/part-000.zarr")

    dataset = data.predict_sky(base, cat)["dataset"]
    assert dataset == default_delta_url(base) == f"{s3_prefix}/part-000-delta.zarr"
    out = calibration.gaincal(dataset, solutions=f"{s3_prefix}/part-000-gains.zarr", mode="phase",
                              true_gains=truth)
    assert out["calibrated"] == dataset            # the delta received CORRECTED_DATA as a new version
    assert out["phase_error"] < 0.01 and out["converged"] == 1.0

    merged = open_dataset(dataset)
    assert {"MODEL_DATA", "CORRECTED_DATA"} <= set(merged.data_vars)
    vis, model, corrected = (merged[v].values[..., 0] for v in ("VISIBILITY", "MODEL_DATA", "CORRECTED_DATA"))
    assert _phase_rms(vis, model) > 0.5                  # 1 rad antenna phase errors in DATA
    assert _phase_rms(corrected, model) < 0.01           # calibrated: the model's phases
    np.testing.assert_allclose(np.abs(corrected), np.abs(model), rtol=1e-3)
    assert not {"MODEL_DATA", "CORRECTED_DATA"} & set(open_dataset(base).data_vars)   # base untouched

    with xr.open_zarr(f"{s3_prefix}/part-000-gains.zarr", consolidated=False) as sol:
        assert sol["GAIN"].shape[1] == merged.sizes["antenna"]


def test_local_ms_is_still_calibrated_in_place(corrupted_ms, tmp_path):
    ms, cat, truth = corrupted_ms
    local = str(tmp_path / "copy.ms")
    from radioflow.vis.ms import write_ms

    write_ms(read_ms(ms, columns=["DATA"]), local)
    assert data.predict_sky(local, cat)["dataset"] == local
    out = calibration.gaincal(local, solutions=str(tmp_path / "gains.zarr"), true_gains=truth)
    assert out["calibrated"] == local and out["phase_error"] < 0.01
    assert "CORRECTED_DATA" in read_ms(local, columns=["CORRECTED_DATA"])
