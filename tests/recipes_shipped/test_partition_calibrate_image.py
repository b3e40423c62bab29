"""The shipped Lithops-style partition-calibrate-image workflow: partitions calibrated in a Lithops map."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS

from radioflow.science.fits import read_fits_image
from radioflow.science.photometry import forced_fluxes
from radioflow.science.skymodel import read_catalogue

RECIPE = Path(__file__).resolve().parents[2] / "src" / "radioflow" / "recipes" / "partition-calibrate-image.yml"


def _run(tmp_path, *args: str) -> Path:
    proc = subprocess.run([sys.executable, "-m", "radioflow", "run", str(RECIPE), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp_path / "radioflow-data" / "partition-calibrate-image"


@pytest.mark.slow
def test_partitions_calibrated_on_lithops_give_true_fluxes(tmp_path):
    work = _run(tmp_path, "nparts=3", "-b", "lithops")
    assert sorted(p.name for p in (work / "parts").glob("part-*.ms")) == ["part-000.ms", "part-001.ms", "part-002.ms"]
    assert len(list((work / "parts").glob("part-*-gains.zarr"))) == 3
    _assert_true_fluxes(work)


@pytest.mark.slow
def test_zarr_partitions_are_calibrated_into_delta_overlays(tmp_path):
    from radioflow.vis.io import open_dataset
    from radioflow.vis.zarr import root_attrs

    work = _run(tmp_path, "nparts=2", "fmt=zarr", "niter=500")
    for k in range(2):
        base, delta = work / "parts" / f"part-00{k}.zarr", work / "parts" / f"part-00{k}-delta.zarr"
        assert not {"MODEL_DATA", "CORRECTED_DATA"} & set(open_dataset(str(base)).data_vars)  # never rewritten
        attrs = root_attrs(str(delta))
        assert attrs["kind"] == "delta" and attrs["parent"].endswith(f"part-00{k}.zarr")
        assert {"MODEL_DATA", "CORRECTED_DATA"} <= set(open_dataset(str(delta)).data_vars)
    _assert_true_fluxes(work)


def _assert_true_fluxes(work: Path) -> None:
    image, header = read_fits_image(work / "image-restored.fits")
    sky = read_catalogue(work / "sky.csv")
    x, y = WCS(header).celestial.world_to_pixel_values(np.degrees(sky.ra), np.degrees(sky.dec))
    bright = np.flatnonzero(sky.flux > 1.0)
    assert bright.size >= 1
    beam = tuple(np.radians([header["BMAJ"], header["BMIN"], header["BPA"]]))
    cell = math.radians(abs(header["CDELT1"]))
    measured = forced_fluxes(image, np.stack([x, y], axis=1)[bright], beam, cell, cell)
    # 1 rad phase errors would scatter the flux; calibrated partitions give it back.
    np.testing.assert_allclose(measured, sky.flux[bright], rtol=0.03)
