"""A run SIGKILLed during an S3 delta update: the column the previous step wrote stays readable
and ``--resume`` completes the run (earlier steps resumed, the killed one rerun)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from recipe_helpers import RECIPES

from radioflow.vis.io import open_dataset
from radioflow.vis.zarr import write_zarr

SRC = str(Path(__file__).resolve().parents[2] / "src")
RECIPE = """
cabs:
  column:
    flavour: python
    command: rf_funcs.write_column
    inputs:
      dataset: str *
      column: str *
      value: float *
    outputs:
      written: str
columns:
  inputs:
    ds: str *
  steps:
    model:
      cab: column
      params: {dataset: =recipe.ds, column: MODEL_DATA, value: 2}
    corrected:
      cab: column
      params: {dataset: =recipe.ds, column: CORRECTED_DATA, value: 3}
"""


def _run(workdir: Path, ds: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "radioflow", "run", "-q", "--no-report", "-C", str(workdir), *extra,
         str(workdir / "columns.yml"), f"ds={ds}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": f"{SRC}:{RECIPES}", **(env or {})})


@pytest.mark.slow
def test_sigkill_during_s3_delta_update_then_resume(tmp_path, s3_prefix, small_vis):
    base = f"{s3_prefix}/obs.zarr"
    write_zarr(small_vis(), base)
    (tmp_path / "columns.yml").write_text(RECIPE)
    flag = tmp_path / "paused"
    proc = _run(tmp_path, base, env={"RADIOFLOW_PAUSE_AT": "delta-update", "RADIOFLOW_PAUSE_SECONDS": "120",
                                     "RADIOFLOW_PAUSE_FLAG": str(flag)})
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the delta update never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    delta = f"{s3_prefix}/obs-delta.zarr"
    assert bool((open_dataset(delta, cache=False).MODEL_DATA.values == 2).all())
    again = _run(tmp_path, base, "--resume")
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    back = open_dataset(delta, cache=False)
    assert bool((back.MODEL_DATA.values == 2).all()) and bool((back.CORRECTED_DATA.values == 3).all())
    assert np.isfinite(back.VISIBILITY.values).all()
