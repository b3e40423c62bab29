"""Crash safety: writers SIGKILLed at chosen points (``RADIOFLOW_PAUSE_AT``) never destroy a
complete dataset nor leave debris that stays; a killed S3 delta update keeps earlier columns
readable and a rerun completes it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from radioflow.vis import storage
from radioflow.vis.io import open_dataset, write_columns
from radioflow.vis.location import Location
from radioflow.vis.zarr import write_zarr

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _kill_at(point: str, args: list[str], timeout: float = 120) -> None:
    """Run ``python args`` until it pauses at ``point``, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": SRC, "RADIOFLOW_PAUSE_AT": point, "RADIOFLOW_PAUSE_SECONDS": "300"}
    proc = subprocess.Popen([sys.executable, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if f"paused at {point}" in line:
                break
            assert time.monotonic() < deadline, f"never reached {point}"
        else:
            pytest.fail(f"writer exited (rc {proc.wait()}) before reaching {point}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _convert(src: str, dst: str) -> list[str]:
    return ["-m", "radioflow", "vis", "convert", src, dst, "--overwrite", "-q"]


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["commit", "swap"])
def test_killed_local_overwrite_keeps_a_complete_dataset(point, tmp_path, small_vis):
    old, new = small_vis(seed=1), small_vis(seed=2)
    dst = tmp_path / "obs.zarr"
    write_zarr(old, str(dst))
    write_zarr(new, str(tmp_path / "new.zarr"))
    _kill_at(point, _convert(str(tmp_path / "new.zarr"), str(dst)))
    back = open_dataset(str(dst)).load()
    # killed before the swap: the old version; killed mid-swap: the complete new one
    want = old if point == "commit" else new
    np.testing.assert_array_equal(back.VISIBILITY.values, want.VISIBILITY.values)
    # the dead writer's debris, and a leftover of an older radioflow (no pid in the name),
    # are swept by the next writer
    (tmp_path / ".obs.zarr.old-deadbeef").mkdir()
    write_zarr(new, str(dst), overwrite=True)
    assert _siblings(dst) == []


@pytest.mark.slow
def test_killed_s3_overwrite_keeps_the_old_dataset(s3_prefix, small_vis, tmp_path):
    old, new = small_vis(seed=1), small_vis(seed=2)
    dst = f"{s3_prefix}/obs.zarr"
    write_zarr(old, dst)
    version = storage.read_marker(dst)["version"]
    write_zarr(new, str(tmp_path / "new.zarr"))
    _kill_at("commit", _convert(str(tmp_path / "new.zarr"), dst))
    assert storage.read_marker(dst)["version"] == version
    np.testing.assert_array_equal(open_dataset(dst, cache=False).VISIBILITY.values, old.VISIBILITY.values)
    # the rerun replaces it and sweeps the dead writer's copy aside
    out = subprocess.run([sys.executable, *_convert(str(tmp_path / "new.zarr"), dst)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(open_dataset(dst, cache=False).VISIBILITY.values, new.VISIBILITY.values)
    loc = Location.parse(dst)
    loc.fs.invalidate_cache()
    assert [p for p in loc.fs.find(loc.parent.path) if ".obs.zarr." in p] == []


@pytest.mark.slow
def test_killed_s3_overwrite_mid_swap_is_completed_by_the_next_reader(s3_prefix, small_vis, tmp_path):
    dst = f"{s3_prefix}/obs.zarr"
    write_zarr(small_vis(seed=1), dst)
    new = small_vis(seed=2)
    write_zarr(new, str(tmp_path / "new.zarr"))
    _kill_at("swap", _convert(str(tmp_path / "new.zarr"), dst))
    np.testing.assert_array_equal(open_dataset(dst, cache=False).VISIBILITY.values, new.VISIBILITY.values)


@pytest.mark.slow
def test_killed_s3_delta_update_keeps_earlier_columns(s3_prefix, small_vis):
    base = f"{s3_prefix}/obs.zarr"
    ds = small_vis()
    write_zarr(ds, base)
    model = np.asarray(ds.VISIBILITY.values) * 2
    delta = write_columns(base, {"MODEL_DATA": model})
    script = ("import numpy as np, sys\nfrom radioflow.vis.io import write_columns\n"
              f"write_columns({base!r}, {{'CORRECTED_DATA': np.ones({model.shape!r}, complex)}})\n")
    _kill_at("delta-update", ["-c", script])
    back = open_dataset(delta, cache=False)
    np.testing.assert_array_equal(back.MODEL_DATA.values, model)
    assert "CORRECTED_DATA" not in back
    # another step's update does not publish the killed step's half-written column
    write_columns(delta, {"MODEL_DATA": model * 3})
    back = open_dataset(delta, cache=False)
    assert "CORRECTED_DATA" not in back
    np.testing.assert_array_equal(back.MODEL_DATA.values, model * 3)
    # the rerun (what --resume does for the killed step) completes the update
    write_columns(base, {"CORRECTED_DATA": np.ones(model.shape, complex)})
    back = open_dataset(delta, cache=False)
    np.testing.assert_array_equal(back.MODEL_DATA.values, model * 3)
    assert bool((back.CORRECTED_DATA.values == 1).all())
