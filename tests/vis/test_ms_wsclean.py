"""WSClean images a radioflow-written MS: point sources land where CONVENTIONS.md says, at 1 Jy."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from radioflow.vis.ms import read_ms, write_ms
from radioflow.vis.schema import baseline_pairs, make_dataset

pytestmark = [pytest.mark.wsclean,
              pytest.mark.skipif(shutil.which("wsclean") is None, reason="wsclean binary not installed")]

N, CELL = 256, np.deg2rad(10 / 3600)
LAT, DEC, RA = np.deg2rad(-26.82), np.deg2rad(-30.0), 0.0
C = 299_792_458.0


def simple_uvw(enu: np.ndarray, a1: np.ndarray, a2: np.ndarray, hour_angle: np.ndarray) -> np.ndarray:
    """(time, baseline, 3) UVW of position(a2) - position(a1) from ENU offsets (textbook rotation)."""
    e, n, u = enu.T
    x = -np.sin(LAT) * n + np.cos(LAT) * u
    y = e
    z = np.cos(LAT) * n + np.sin(LAT) * u
    b = np.stack([x[a2] - x[a1], y[a2] - y[a1], z[a2] - z[a1]])  # (3, nbl)
    h = hour_angle[:, None]
    sh, ch, sd, cd = np.sin(h), np.cos(h), np.sin(DEC), np.cos(DEC)
    uu = sh * b[0] + ch * b[1]
    vv = -sd * ch * b[0] + sd * sh * b[1] + cd * b[2]
    ww = cd * ch * b[0] - cd * sh * b[1] + sd * b[2]
    return np.stack([uu, vv, ww], axis=-1)


def point_source_ms(path: Path, dx: int, dy: int):
    """30-antenna MS of a 1 Jy unpolarised point source at pixel (N/2 + dx, N/2 + dy)."""
    rng = np.random.default_rng(42)
    nant = 30
    enu = np.column_stack([rng.uniform(-1500, 1500, (nant, 2)), rng.uniform(-5, 5, nant)])
    a1, a2 = baseline_pairs(nant)
    ntime = 8
    ha = np.deg2rad(np.linspace(-15, 15, ntime))
    uvw = simple_uvw(enu, a1, a2, ha)
    freq = 150e6 + np.arange(4) * 1e6
    ll, mm = -dx * CELL, dy * CELL
    nn = np.sqrt(1 - ll * ll - mm * mm)
    uvw_lambda = uvw[:, :, None, :] * (freq / C)[None, None, :, None]
    phase = 2j * np.pi * (uvw_lambda[..., 0] * ll + uvw_lambda[..., 1] * mm + uvw_lambda[..., 2] * (nn - 1))
    vis = np.zeros((ntime, a1.size, freq.size, 4), np.complex64)
    vis[..., 0] = vis[..., 3] = np.exp(phase)
    ecef = np.array([-2.5592e6, 5.0954e6, -2.8489e6]) + rng.normal(size=(nant, 3)) * 100
    ds = make_dataset(time=5.0e9 + np.arange(ntime) * 240.0, frequency=freq, antenna1=a1, antenna2=a2,
                      uvw=uvw, antenna_position=ecef, antenna_name=[f"A{i:02d}" for i in range(nant)],
                      phase_center=(RA, DEC), visibility=vis, channel_width=np.full(4, 1e6),
                      telescope_name="SKA-Low", integration_time=240.0)
    return write_ms(ds, path)


@pytest.mark.parametrize("dx, dy", [(0, 0), (-10, 6)], ids=["centre", "offset"])
def test_wsclean_images_point_source(tmp_path: Path, dx: int, dy: int) -> None:
    ms = point_source_ms(tmp_path / "point.ms", dx, dy)
    proc = subprocess.run(
        ["wsclean", "-size", str(N), str(N), "-scale", "10asec", "-weight", "natural", "-use-wgridder",
         "-no-small-inversion", "-j", "2", "-name", str(tmp_path / "X"), str(ms)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    image = fits.getdata(tmp_path / "X-dirty.fits")[0, 0]
    y, x = np.unravel_index(np.argmax(image), image.shape)
    assert (y, x) == (N // 2 + dy, N // 2 + dx)
    assert image[y, x] == pytest.approx(1.0, abs=1e-3)


def test_wsclean_cleans_corrected_data_and_writes_model_data(tmp_path: Path) -> None:
    """WSClean images CORRECTED_DATA, cleans, and adds a MODEL_DATA column that read_ms returns."""
    ms = point_source_ms(tmp_path / "point.ms", 0, 0)
    ds = read_ms(ms)
    ds = ds.assign(CORRECTED_DATA=ds.VISIBILITY, VISIBILITY=ds.VISIBILITY * 0)
    write_ms(ds, ms, overwrite=True)
    proc = subprocess.run(
        ["wsclean", "-size", str(N), str(N), "-scale", "10asec", "-weight", "natural", "-use-wgridder",
         "-no-small-inversion", "-j", "2", "-data-column", "CORRECTED_DATA", "-niter", "200", "-mgain", "0.8",
         "-name", str(tmp_path / "X"), str(ms)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    dirty = fits.getdata(tmp_path / "X-dirty.fits")[0, 0]
    assert dirty[N // 2, N // 2] == pytest.approx(1.0, abs=1e-3) and dirty.argmax() == N // 2 * N + N // 2
    back = read_ms(ms, columns=("DATA", "MODEL_DATA", "CORRECTED_DATA"))
    assert not back.VISIBILITY.values.any()
    assert np.array_equal(back.CORRECTED_DATA.values, ds.CORRECTED_DATA.values)
    model = back.MODEL_DATA.values
    np.testing.assert_allclose(model[..., [0, 3]], 1.0, atol=2e-3)
    assert np.abs(model[..., [1, 2]]).max() < 1e-3
