"""MS <-> Zarr conversion: lossless round trips (local and S3), WSClean on the result,
interrupted writers, bounded memory."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from radioflow.errors import UsageError
from radioflow.vis import io, storage
from radioflow.vis.convert import _as_array, convert
from radioflow.vis.location import Location
from radioflow.vis.ms import MSWriter
from radioflow.vis.schema import baseline_pairs, make_dataset

RADIOFLOW = str(Path(sys.executable).parent / "radioflow")
MAIN_COLUMNS = ("DATA", "FLAG", "WEIGHT", "WEIGHT_SPECTRUM", "SIGMA", "UVW", "TIME", "TIME_CENTROID",
                "INTERVAL", "EXPOSURE", "ANTENNA1", "ANTENNA2", "FIELD_ID", "DATA_DESC_ID", "FLAG_ROW",
                "SCAN_NUMBER", "CORRECTED_DATA")
SUBTABLES = ("ANTENNA", "SPECTRAL_WINDOW", "FIELD", "POLARIZATION", "DATA_DESCRIPTION", "OBSERVATION", "FEED")


def _table_columns(path: str) -> dict[str, np.ndarray]:
    from casacore import tables as ct

    out = {}
    with ct.table(path, ack=False) as t:
        for col in t.colnames():
            if t.nrows() and t.iscelldefined(col, 0):
                try:
                    out[col] = _as_array(t.getcol(col))
                except RuntimeError:
                    pass
    return out


def assert_ms_equal(a: str, b: str, main=MAIN_COLUMNS, subtables=SUBTABLES) -> None:
    """Main columns and whole subtables of two MSs hold identical values."""
    ta, tb = _table_columns(a), _table_columns(b)
    for col in main:
        if col in ta:
            np.testing.assert_array_equal(tb[col], ta[col], err_msg=col)
    for sub in subtables:
        sa, sb = _table_columns(f"{a}::{sub}"), _table_columns(f"{b}::{sub}")
        assert sorted(sa) == sorted(sb), sub
        for col in sa:
            np.testing.assert_array_equal(sb[col], sa[col], err_msg=f"{sub}.{col}")


@pytest.fixture
def source_ms(tmp_path, small_vis) -> str:
    """A small MS with CORRECTED_DATA and an ANTENNA table edited like a foreign MS would be."""
    from casacore import tables as ct

    ds = small_vis(ntime=12, nant=7, nchan=6, seed=11)
    ds["CORRECTED_DATA"] = ds.VISIBILITY * 3
    path = str(tmp_path / "src.ms")
    io.write_dataset(ds, path)
    with ct.table(f"{path}::ANTENNA", ack=False, readonly=False) as t:
        t.putcol("STATION", [f"PAD{i}" for i in range(t.nrows())])
        t.putcol("MOUNT", ["equatorial"] * t.nrows())
        t.putcol("OFFSET", np.arange(t.nrows() * 3, dtype=float).reshape(-1, 3))
    with ct.table(f"{path}::OBSERVATION", ack=False, readonly=False) as t:
        t.putcol("OBSERVER", ["someone"])
    return path


def test_ms_zarr_ms_round_trip_local(tmp_path, source_ms):
    zarr_url = convert(source_ms, str(tmp_path / "x.zarr"), chunks="time=5,frequency=4")
    z = io.open_dataset(zarr_url)
    assert z.VISIBILITY.data.chunks[0] == (5, 5, 2) and z.VISIBILITY.data.chunks[2] == (4, 2)
    xr.testing.assert_identical(z.load(), io.open_dataset(source_ms).load())
    out = convert(zarr_url, str(tmp_path / "back.ms"))
    assert_ms_equal(source_ms, out)


def test_irregular_ms_rows_take_the_general_path(tmp_path, source_ms):
    from casacore import tables as ct

    gappy = str(tmp_path / "gappy.ms")
    with ct.table(source_ms, ack=False) as t:
        keep = [r for r in range(t.nrows()) if r not in (3, 4, 40)]
        sel = t.selectrows(keep)
        sel.copy(gappy, deep=True).close()  # missing rows: cells come back flagged, zero weight
        sel.close()
    z = convert(gappy, str(tmp_path / "gaps.zarr"), chunks="time=4")
    got, ref = io.open_dataset(z).load(), io.open_dataset(gappy).load()
    xr.testing.assert_identical(got, ref)
    empty = got.FLAG.values.all(axis=(2, 3)) & (got.WEIGHT.values.max(axis=(2, 3)) == 0)
    assert int(empty.sum()) == 3


@pytest.mark.wsclean
def test_ms_to_zarr_on_s3_and_back_lossless_then_wsclean(tmp_path, s3_prefix):
    ms = tmp_path / "sim.ms"
    subprocess.run([RADIOFLOW, "simulate", "-o", str(ms), "--rmax", "300", "--nchan", "4", "--ntimes", "3",
                    "--nsources", "3"], check=True, capture_output=True)
    zarr_url = f"{s3_prefix}/sim.zarr"
    assert convert(str(ms), zarr_url) == zarr_url
    assert storage.read_marker(zarr_url)["format"] == "zarr"
    back = str(tmp_path / "back.ms")
    convert(zarr_url, back)
    assert_ms_equal(str(ms), back)
    if shutil.which("wsclean") is None:
        pytest.skip("wsclean not installed: round trip checked, imaging skipped")
    name = str(tmp_path / "img")
    run = subprocess.run(["wsclean", "-quiet", "-j", "1", "-size", "128", "128", "-scale", "60asec",
                          "-niter", "0", "-use-wgridder", "-name", name, back], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    from astropy.io import fits

    image = fits.getdata(f"{name}-dirty.fits")
    assert np.isfinite(image).all() and float(np.nanmax(image)) > 0.1


def test_ms_on_s3_is_staged(tmp_path, s3_prefix, small_vis):
    ds = small_vis(seed=12)
    url = io.write_dataset(ds, f"{s3_prefix}/obs.ms")
    assert storage.read_marker(url)["format"] == "ms"
    back = io.open_dataset(url).load()
    np.testing.assert_array_equal(back.VISIBILITY.values, ds.VISIBILITY.values)
    out = convert(url, str(tmp_path / "obs.zarr"))
    np.testing.assert_array_equal(io.open_dataset(out).FLAG.values, ds.FLAG.values)


def test_convert_errors(tmp_path, source_ms):
    with pytest.raises(UsageError, match="must end in .ms"):
        convert(source_ms, str(tmp_path / "x.h5"))
    with pytest.raises(UsageError, match="same dataset"):
        convert(source_ms, source_ms)
    with pytest.raises(UsageError, match="no data for field 3"):
        convert(source_ms, str(tmp_path / "x.zarr"), field=3)
    convert(source_ms, str(tmp_path / "x.zarr"))
    with pytest.raises(UsageError, match="already exists"):
        convert(source_ms, str(tmp_path / "x.zarr"))


def test_cli_convert_reports_bad_input(tmp_path):
    run = subprocess.run([RADIOFLOW, "vis", "convert", str(tmp_path / "missing.ms"), str(tmp_path / "x.zarr")],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "does not exist" in run.stderr and "Traceback" not in run.stderr


# --------------------------------------------------------------------------- big MS helpers


def write_big_ms(path: Path, *, nant: int, nchan: int, ntime: int, seed: int = 0) -> int:
    """Stream a random MS of ``ntime`` x ``nant*(nant-1)/2`` rows; returns its DATA bytes."""
    rng = np.random.default_rng(seed)
    a1, a2 = baseline_pairs(nant)
    nbl = a1.size
    enu = rng.normal(size=(nant, 3)) * 500
    base_uvw = (enu[a2] - enu[a1])
    freq = 1e8 + np.arange(nchan) * 1e5
    template = make_dataset(time=np.array([4.9e9]), frequency=freq, integration_time=8.0, antenna1=a1, antenna2=a2,
                            uvw=np.zeros((1, nbl, 3)), antenna_position=enu + 6e6,
                            antenna_name=[f"S{i}" for i in range(nant)], phase_center=(0.0, -0.5),
                            visibility=np.zeros((1, nbl, nchan, 4), np.complex64),
                            weight=np.ones((1, nbl, nchan, 4), np.float32),
                            flag=np.zeros((1, nbl, nchan, 4), bool), telescope_name="BIG")
    template = template.isel(time=[0] * ntime).assign_coords(time=4.9e9 + np.arange(ntime) * 8.0)
    with MSWriter(path, template) as writer:
        step = max(1, 4_000_000 // (nbl * nchan * 4))
        for t0 in range(0, ntime, step):
            nt = min(step, ntime - t0)
            shape = (nt, nbl, nchan, 4)
            vis = rng.standard_normal(size=(*shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
            block = template.isel(time=slice(t0, t0 + nt)).copy()
            block["VISIBILITY"] = (block.VISIBILITY.dims, vis)
            block["FLAG"] = (block.FLAG.dims, rng.random(shape, dtype=np.float32) < 0.05)
            block["UVW"] = (block.UVW.dims, np.broadcast_to(base_uvw, (nt, nbl, 3)) * (1 + t0 * 1e-4))
            writer.write_block(block, t0)
    return ntime * nbl * nchan * 4 * 8


def _child_peak_rss(args: list[str]) -> int:
    """Peak RSS (bytes) of ``args`` run in a fresh grandchild, via RUSAGE_CHILDREN of a child."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) * 1024


@pytest.mark.slow
def test_interrupted_conversion_is_refused_then_completed(tmp_path, s3_prefix):
    ms = tmp_path / "big.ms"
    write_big_ms(ms, nant=24, nchan=64, ntime=120)  # ~54 MB of DATA
    for dst in (f"{s3_prefix}/cut.zarr", str(tmp_path / "cut.zarr")):
        proc = subprocess.Popen([RADIOFLOW, "vis", "convert", "-q", str(ms), dst], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        fs, path = Location.parse(dst).fs, Location.parse(dst).path
        parent = os.path.dirname(path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            chunks = [p for p in fs.find(parent) if "/VISIBILITY/c/" in p]
            if chunks or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the conversion finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with pytest.raises(UsageError, match="incomplete|does not exist"):
            io.open_dataset(dst)
        subprocess.run([RADIOFLOW, "vis", "convert", "-q", str(ms), dst], check=True, capture_output=True)
        got = io.open_dataset(dst)
        src = io.open_dataset(str(ms))
        np.testing.assert_array_equal(got.VISIBILITY[-3:].values, src.VISIBILITY[-3:].values)
        np.testing.assert_array_equal(got.FLAG.values, src.FLAG.values)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cut.zarr")] == []


@pytest.mark.slow
def test_peak_memory_bounded(tmp_path):
    """Peak RSS grows by a few blocks, not with the dataset: 100 MB and 300 MB of DATA cost the same."""
    sizes = {"tiny": (8, 16, 4), "mid": (32, 64, 100), "big": (32, 64, 300)}
    nbytes, peak = {}, {}
    for name, (nant, nchan, ntime) in sizes.items():
        ms = tmp_path / f"{name}.ms"
        nbytes[name] = write_big_ms(ms, nant=nant, nchan=nchan, ntime=ntime)
        peak[name] = _child_peak_rss([RADIOFLOW, "vis", "convert", "-q", str(ms), str(tmp_path / f"{name}.zarr")])
    assert nbytes["big"] > 290e6
    growth = {k: peak[k] - peak["tiny"] for k in ("mid", "big")}
    mb = {k: round(v / 1e6) for k, v in peak.items()}
    print(f"peak RSS MS -> Zarr: {mb} MB; DATA {nbytes['big'] / 1e6:.0f} MB")
    assert growth["big"] < 0.6 * nbytes["big"]
    assert growth["big"] - growth["mid"] < 0.2 * nbytes["big"]  # allocator noise, not the data
    back = {k: _child_peak_rss([RADIOFLOW, "vis", "convert", "-q", str(tmp_path / f"{k}.zarr"),
                                str(tmp_path / f"{k}-back.ms")]) for k in ("mid", "big")}
    print(f"peak RSS Zarr -> MS: { {k: round(v / 1e6) for k, v in back.items()} } MB")
    assert back["big"] - peak["tiny"] < 0.8 * nbytes["big"]
    assert back["big"] - back["mid"] < 0.2 * nbytes["big"]
