"""``radioflow image -niter N -update-model-required``: MODEL_DATA of the CLEAN model, as WSClean writes it."""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import casacore.tables as ct
import numpy as np
import pytest

from radioflow.science import observation as O
from radioflow.science import skymodel as S
from radioflow.science import telescopes as T
from radioflow.science.imaging import image_to_vis
from radioflow.science.model_column import write_model_data
from radioflow.science.simulate import simulate
from radioflow.science.streaming import GridSpec
from radioflow.vis.ms import write_ms
from radioflow.vis.ms_staged import STAGING_SUFFIX, StagedColumn

SRC = str(Path(__file__).resolve().parents[2] / "src")
NPIX = 128
CELL_ASEC = 240.0
CELL = math.radians(CELL_ASEC / 3600)
RA0, DEC0 = math.radians(60.0), math.radians(-30.0)
PIXELS = np.array([[64, 64], [40, 80]])  # (x, y) on pixel centres
FLUXES = np.array([2.0, 1.0])
CLEAN = ["-size", str(NPIX), str(NPIX), "-scale", f"{CELL_ASEC}asec", "-niter", "1000", "-mgain", "0.8", "-no-png"]


@pytest.fixture(scope="module")
def point_ms(tmp_path_factory) -> Path:
    """A noise-free MS (73 stations, 4 times, 4 channels) of two point sources with a
    flat spectrum; rows 0-499 and channel 1 flagged (their DATA still holds the sources' visibilities)."""
    lay = T.load_layout("ska-low-model").select(rmax=300)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=4,
                             ha_range=(-math.pi / 24, math.pi / 24), ntimes=4)
    ra, dec = S.pixel_to_radec(PIXELS[:, 0], PIXELS[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, FLUXES, ref_freq=1.05e8, spectral_index=0.0)
    ms = write_ms(simulate(lay, obs, sky, noise_sigma=None, seed=1), tmp_path_factory.mktemp("model") / "pt.ms")
    with ct.table(str(ms), readonly=False, ack=False) as t:
        flag = t.getcol("FLAG")
        flag[:500] = True
        flag[:, 1] = True
        t.putcol("FLAG", flag)
    return Path(ms)


def _copy(ms: Path, dst: Path) -> Path:
    shutil.copytree(ms, dst)
    return dst


def _image(ms: Path, cwd: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "radioflow", "image", str(ms), *CLEAN, "-name", "rf", *extra]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": SRC, **(env or {})})


def _columns(ms: Path, *names: str) -> list[np.ndarray]:
    with ct.table(str(ms), ack=False) as t:
        return [t.getcol(n) for n in names]


def test_without_the_flag_model_data_is_not_created(point_ms, tmp_path):
    ms = _copy(point_ms, tmp_path / "a.ms")
    r = _image(ms, tmp_path)
    assert r.returncode == 0, r.stderr
    with ct.table(str(ms), ack=False) as t:
        assert "MODEL_DATA" not in t.colnames()


def test_model_data_predicts_the_point_sources(point_ms, tmp_path):
    """Noise-free point sources on pixel centres: the CLEAN model predicts DATA to 1e-4 of the
    peak in both parallel hands, flagged rows and channels included (WSClean predicts them
    too); cross hands stay zero; the column is tiled like DATA."""
    ms = _copy(point_ms, tmp_path / "b.ms")
    r = _image(ms, tmp_path, "-update-model-required")
    assert r.returncode == 0, r.stderr
    assert "Wrote MODEL_DATA" in r.stdout
    model, data, flag = _columns(ms, "MODEL_DATA", "DATA", "FLAG")
    peak = np.abs(data).max()
    for k in (0, 3):
        assert np.abs(model[..., k] - data[..., k])[~flag[..., k]].max() <= 1e-4 * peak
        assert np.abs(model[..., k] - data[..., k])[flag[..., k]].max() <= 1e-4 * peak
    assert not np.any(model[..., 1:3])
    with ct.table(str(ms), ack=False) as t:
        assert t.getdminfo("MODEL_DATA")["TYPE"] == "TiledColumnStMan"
        assert not any(c.endswith(STAGING_SUFFIX) for c in t.colnames())


@pytest.mark.wsclean
@pytest.mark.skipif(shutil.which("wsclean") is None, reason="wsclean not installed")
def test_model_data_equals_wsclean_predict_of_our_model_images(point_ms, tmp_path):
    """Two output channels: WSClean's ``-predict`` of radioflow's rf-000N-model.fits gives the
    MODEL_DATA radioflow wrote, to 1e-4 of the peak (each channel from its group's model)."""
    ours = _copy(point_ms, tmp_path / "ours.ms")
    r = _image(ours, tmp_path, "-channels-out", "2", "-update-model-required")
    assert r.returncode == 0, r.stderr
    theirs = _copy(point_ms, tmp_path / "theirs.ms")
    subprocess.run(["wsclean", "-predict", "-quiet", "-j", "1", "-use-wgridder", "-wgridder-accuracy", "1e-5",
                    "-no-small-inversion", "-channels-out", "2", "-name", "rf", str(theirs)],
                   check=True, capture_output=True, cwd=tmp_path)
    (mine,), (ws,) = _columns(ours, "MODEL_DATA"), _columns(theirs, "MODEL_DATA")
    assert np.abs(ws).max() > 1.0
    assert np.abs(mine - ws).max() <= 1e-4 * np.abs(ws).max()


def test_each_channel_group_is_predicted_from_its_model_plane(point_ms, tmp_path):
    """Direct call: channels [0, 2) from plane 0 and [2, 4) from plane 1; autocorrelation-free
    rows of the field all predicted; an existing MODEL_DATA's cross hands are kept (as WSClean)."""
    ms = _copy(point_ms, tmp_path / "c.ms")
    model = np.zeros((2, NPIX, NPIX))
    model[0, 64, 64], model[1, 80, 40] = 3.0, 1.5
    spec = GridSpec(npix_x=NPIX, npix_y=NPIX, cell=CELL)
    with ct.table(str(ms), readonly=False, ack=False) as t:
        from radioflow.vis.ms_columns import add_column_like

        add_column_like(t, "MODEL_DATA", "DATA", np.dtype(np.complex64))
        t.putcol("MODEL_DATA", np.full(t.getcol("DATA").shape, 7 + 0j, np.complex64))
    assert write_model_data(ms, model, [(0, 2), (2, 4)], spec, max_bytes=1) > 0  # many small row ranges
    got, uvw = _columns(ms, "MODEL_DATA", "UVW")
    with ct.table(f"{ms}::SPECTRAL_WINDOW", ack=False) as t:
        freq = t.getcol("CHAN_FREQ")[0]
    for g, (lo, hi) in enumerate([(0, 2), (2, 4)]):
        want = image_to_vis(model[g], uvw, freq[lo:hi], NPIX, NPIX, CELL, CELL)
        for k in (0, 3):
            np.testing.assert_allclose(got[:, lo:hi, k], want, atol=1e-5 * 3.0)  # ducc0 accuracy epsilon 1e-5 of the peak
    assert np.all(got[..., 1:3] == 7)


def test_a_failed_write_leaves_the_previous_column(point_ms, tmp_path):
    ms = _copy(point_ms, tmp_path / "d.ms")
    with ct.table(str(ms), readonly=False, ack=False) as t:
        from radioflow.vis.ms_columns import add_column_like

        add_column_like(t, "MODEL_DATA", "DATA", np.dtype(np.complex64))
        t.putcol("MODEL_DATA", np.full(t.getcol("DATA").shape, 5 + 0j, np.complex64))
    with pytest.raises(RuntimeError, match="disk full"):
        with StagedColumn(ms, "MODEL_DATA") as col:
            col.put(0, np.zeros((10, 4, 4), np.complex64))
            raise RuntimeError("disk full")
    (model,) = _columns(ms, "MODEL_DATA")
    assert np.all(model == 5)
    with ct.table(str(ms), ack=False) as t:
        assert not any(c.endswith(STAGING_SUFFIX) for c in t.colnames())


def test_killed_mid_write_leaves_no_model_data_and_a_rerun_completes(point_ms, tmp_path):
    """SIGKILL after the first row range: no MODEL_DATA that looks complete (the staging column
    is hidden under another name); the next run removes it and writes MODEL_DATA."""
    ms = _copy(point_ms, tmp_path / "e.ms")
    env = {**os.environ, "PYTHONPATH": SRC, "RADIOFLOW_PAUSE_AT": "staged-column", "RADIOFLOW_PAUSE_SECONDS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "radioflow", "image", str(ms), *CLEAN, "-name", "rf",
                             "-update-model-required"], cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    try:
        for line in proc.stderr:
            if "paused at staged-column" in line:
                break
            assert time.monotonic() < deadline, "never reached the first row range"
        else:
            pytest.fail(f"the image run exited (rc {proc.wait()}) before writing MODEL_DATA")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with ct.table(str(ms), ack=False) as t:
        assert "MODEL_DATA" not in t.colnames()
    r = _image(ms, tmp_path, "-update-model-required")
    assert r.returncode == 0, r.stderr
    with ct.table(str(ms), ack=False) as t:
        assert "MODEL_DATA" in t.colnames()
        assert not any(c.endswith(STAGING_SUFFIX) for c in t.colnames())
