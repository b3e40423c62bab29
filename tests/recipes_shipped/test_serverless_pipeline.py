"""The shipped serverless pipeline (flag -> average -> calibrate -> subtract A-team -> apply per
partition in a map, joint image) on an observation with antenna phase errors and a 40 Jy
off-field source: run locally on MS partitions and on Lithops over S3 with Zarr partitions."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS

from radioflow.science.calibrate import corrupt
from radioflow.science.corrupt import random_gains
from radioflow.science.fits import read_fits_image
from radioflow.science.imaging import uvw_rows
from radioflow.science.photometry import forced_fluxes
from radioflow.science.predict import predict_rows
from radioflow.science.skymodel import read_catalogue
from radioflow.vis.io import open_dataset
from radioflow.vis.ms import read_ms
from radioflow.vis.ms_columns import write_ms_columns

RECIPE = Path(__file__).resolve().parents[2] / "src" / "radioflow" / "recipes" / "serverless-pipeline.yml"
FIELD = "field,0.0,-30.0,2.5\nf2,0.5,-29.6,1.2\n"
ATEAM = "ateam,3.0,-28.0,40.0\n"
HEADER = "name,ra_deg,dec_deg,flux_jy\n"
ARGS = ["nparts=3", "solint=2", "npix=128", "cell=120", "niter=500"]


@pytest.fixture(scope="module")
def observation(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serverless")
    (tmp / "sky.csv").write_text(HEADER + FIELD + ATEAM)
    (tmp / "field.csv").write_text(HEADER + FIELD)
    (tmp / "ateam.csv").write_text(HEADER + ATEAM)
    r = subprocess.run([sys.executable, "-m", "radioflow", "simulate", "-o", "obs.ms", "--rmax", "250", "--nchan", "16",
                        "--ntimes", "24", "--sky", "sky.csv", "--noise-sigma", "0.5"], cwd=tmp, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ds = read_ms(tmp / "obs.ms", columns=["DATA"])
    g = random_gains(ds.sizes["antenna"], ds.sizes["time"], ds.sizes["frequency"], phase_rms=1.0, seed=2,
                     time_interval=2)
    a1, a2 = ds["baseline_antenna1"].values, ds["baseline_antenna2"].values
    write_ms_columns(tmp / "obs.ms", {"DATA": corrupt(ds["VISIBILITY"].values, g, a1, a2)})
    return tmp


def _run(cwd: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "radioflow", "run", str(RECIPE), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _ateam_residual(dataset: str, obs: Path) -> float:
    """Flux left at the A-team position: the DFT of CORRECTED_DATA − field model towards it (Jy)."""
    ds = open_dataset(dataset).load()
    ra, dec = ds.attrs["phase_center"]
    freq = ds["frequency"].values
    uvw = uvw_rows(ds)
    field = predict_rows(read_catalogue(obs / "field.csv"), uvw, freq, ra, dec)
    unit = predict_rows(read_catalogue(obs / "ateam.csv"), uvw, freq, ra, dec) / 40.0
    res = ds["CORRECTED_DATA"].values[..., 0].reshape(field.shape) - field
    good = ~ds["FLAG"].values[..., 0].reshape(field.shape)
    return float(abs(np.mean((res * np.conj(unit))[good])))


def _field_fluxes(image, header, obs: Path) -> np.ndarray:
    sky = read_catalogue(obs / "field.csv")
    x, y = WCS(header).celestial.world_to_pixel_values(np.degrees(sky.ra), np.degrees(sky.dec))
    beam = tuple(np.radians([header["BMAJ"], header["BMIN"], header["BPA"]]))
    cell = math.radians(abs(header["CDELT1"]))
    return forced_fluxes(image, np.stack([x, y], axis=1), beam, cell, cell)


@pytest.mark.slow
def test_pipeline_locally_builtin_and_dp3_agree(observation, tmp_path):
    fluxes = {}
    for tools in ("builtin", "dp3"):
        cwd = tmp_path / tools
        cwd.mkdir()
        _run(cwd, f"ms={observation / 'obs.ms'}", f"sky={observation / 'sky.csv'}",
             f"ateam={observation / 'ateam.csv'}", f"tools={tools}", *ARGS)
        work = cwd / "radioflow-data" / "serverless-pipeline"
        assert sorted(p.name for p in (work / "parts").glob("part-*-avg.ms")) == [
            "part-000-avg.ms", "part-001-avg.ms", "part-002-avg.ms"]
        assert _ateam_residual(str(work / "calibrated.ms"), observation) < 0.01 * 40.0
        image, header = read_fits_image(work / "image-restored.fits")
        fluxes[tools] = _field_fluxes(image, header, observation)
        np.testing.assert_allclose(fluxes[tools], [2.5, 1.2], rtol=0.03)
    assert len(list((tmp_path / "dp3" / "radioflow-data" / "serverless-pipeline" / "parts").glob("*-cal.h5"))) == 3
    np.testing.assert_allclose(fluxes["dp3"], fluxes["builtin"], rtol=0.02)


@pytest.mark.slow
def test_pipeline_on_lithops_over_s3_matches_the_local_run(observation, tmp_path, s3_prefix):
    out = _run(tmp_path, f"ms={observation / 'obs.ms'}", f"sky={observation / 'sky.csv'}",
               f"ateam={observation / 'ateam.csv'}", f"workdir={s3_prefix}/pipe", "fmt=zarr", "-b", "lithops", *ARGS)
    assert "run " in out and not (tmp_path / "s3:").exists()
    assert _ateam_residual(f"{s3_prefix}/pipe/calibrated.zarr", observation) < 0.01 * 40.0
    import fsspec

    local = tmp_path / "restored.fits"
    fsspec.filesystem("s3").get(f"{s3_prefix}/pipe/image-restored.fits".removeprefix("s3://"), str(local))
    image, header = read_fits_image(local)
    np.testing.assert_allclose(_field_fluxes(image, header, observation), [2.5, 1.2], rtol=0.03)
