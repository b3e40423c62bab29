"""radioflow estimate: predicted product sizes against the products a real run writes."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from radioflow.cli import main
from radioflow.ops.estimate import fits_bytes, ms_bytes

RECIPE = str(resources.files("radioflow.recipes") / "srcnet-aastar.yml")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("telescope,ntimes,inc,npix", [("meerkat", 4, "250e3", 128), ("ska-mid-aastar", 3, "125e3", 256)])
def test_estimates_within_ten_percent_of_actual_sizes(tmp_path, capsys, monkeypatch, telescope, ntimes, inc, npix):
    for var in ("OBS_ID", "FILE_PREFIX", "OUT_DIR", "IMAGING_CELLSIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("START_FREQ_HZ", "1.304e9")
    monkeypatch.setenv("END_FREQ_HZ", "1.305e9")
    monkeypatch.setenv("FREQ_INC_HZ", inc)
    args = [RECIPE, "--visibility", "--dirty", "--cleaned", f"telescope={telescope}", f"num_time_stamps={ntimes}",
            f"imaging_npixel={npix}", "obs_id=est", "niter=20"]
    capsys.readouterr()
    assert main(["estimate", *args, "-C", str(tmp_path), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert main(["run", *args, "-C", str(tmp_path), "-q"]) == 0, capsys.readouterr().err
    assert sorted(Path(p).name for p in est["kept"]) == ["est_cleaned.fits", "est_dirty.fits", "est_measurements.ms"]
    for rel, predicted in est["kept"].items():
        actual = _size(tmp_path / rel)
        print(f"{rel}: predicted {predicted} actual {actual} ({predicted / actual - 1:+.2%})")
        assert abs(predicted - actual) <= 0.10 * actual, (rel, predicted, actual)
    assert est["peak_memory"] > 0 and est["warnings"] == []


def test_discarded_products_are_not_kept_and_small_volumes_warn(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OUT_DIR", raising=False)
    capsys.readouterr()
    assert main(["estimate", RECIPE, "--dirty", "--json"]) == 0              # the job's defaults: ~2 TiB of MS
    est = json.loads(capsys.readouterr().out)
    made = {Path(p).name.split("_")[-1]: b for p, b in est["made"].items()}
    assert set(made) == {"measurements.ms", "dirty.fits"}
    assert [Path(p).name.split("_")[-1] for p in est["kept"]] == ["dirty.fits"]
    # 1800 times x 10296 baselines x 2717 channels x 4 pol, 12.125 B per visibility + 121 B per row
    assert made["measurements.ms"] == pytest.approx(1800 * 10296 * (2717 * 4 * 12.125 + 121), rel=0.01)
    assert made["dirty.fits"] == fits_bytes(20000, 20000)
    assert any("free but the run writes" in w for w in est["warnings"])


def test_ms_model_counts_tiles_rows_and_subtables():
    small, large = ms_bytes(2, 64, 4), ms_bytes(200, 64, 64)
    assert small > 2 * 2016 * 121 + 208_000
    per_vis = (large - 200 * 2016 * 121 - 208_000 - 375 * 64) / (200 * 2016 * 64 * 4)
    assert 12.0 < per_vis < 12.4                                          # 8 + 4 + 1/8 B and whole tiles
