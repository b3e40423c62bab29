"""MSv2 <-> dataset: exact round trips, MS structure, selection, atomic writes, streaming."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from casacore import tables as ct

from radioflow.errors import UsageError
from radioflow.vis import ms as msmod
from radioflow.vis import ms_rows
from radioflow.vis.ms import MSWriter, read_ms, write_ms
from radioflow.vis.ms_scan import iter_ms_chunks, ms_summary
from radioflow.vis.schema import baseline_pairs, make_dataset

NANT, NTIME, NCHAN = 7, 5, 6


def make_ds(seed: int = 1, *, pols=("XX", "XY", "YX", "YY"), model: bool = False) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    a1, a2 = baseline_pairs(NANT)
    shape = (NTIME, a1.size, NCHAN, len(pols))
    vis = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    ds = make_dataset(
        time=5.0e9 + 0.123456789 + np.arange(NTIME) * 7.9937,
        frequency=1.0e8 + np.arange(NCHAN) * 1.23456e5 + rng.random(NCHAN),
        antenna1=a1, antenna2=a2,
        uvw=rng.normal(size=(NTIME, a1.size, 3)) * 1234.5678,
        antenna_position=rng.normal(size=(NANT, 3)) * 6.4e6,
        antenna_name=[f"S{i:03d}" for i in range(NANT)],
        phase_center=(1.2345678901234, -0.456789012345),
        visibility=vis,
        weight=rng.random(shape).astype(np.float32) + 0.1,
        flag=rng.random(shape) > 0.7,
        polarization=pols,
        channel_width=np.full(NCHAN, 1.23456e5),
        dish_diameter=rng.uniform(12, 15, NANT),
        integration_time=7.9937,
        telescope_name="SKA-Low",
        field_name="target",
        site=(116.76, -26.82, 377.0),
    )
    if model:
        ds["MODEL_DATA"] = ds["VISIBILITY"] * np.complex64(0.5 - 2j)
    return ds


@pytest.fixture
def ds() -> xr.Dataset:
    return make_ds()


@pytest.fixture
def ms_path(ds: xr.Dataset, tmp_path: Path) -> Path:
    return write_ms(ds, tmp_path / "obs.ms")


def assert_same(a: xr.Dataset, b: xr.Dataset, variables=("VISIBILITY", "WEIGHT", "FLAG", "UVW")) -> None:
    for name in (*variables, "ANTENNA_POSITION", "DISH_DIAMETER", "CHANNEL_WIDTH"):
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name].values, b[name].values), name
    for name in ("time", "frequency", "polarization", "baseline_antenna1", "baseline_antenna2", "antenna_name"):
        assert np.array_equal(a[name].values, b[name].values), name
    assert a.attrs == b.attrs


def test_round_trip_is_exact(ds: xr.Dataset, tmp_path: Path) -> None:
    ds = make_ds(model=True)
    path = write_ms(ds, tmp_path / "rt.ms")
    assert path == tmp_path / "rt.ms"
    back = read_ms(path, columns=("DATA", "MODEL_DATA"))
    assert_same(ds, back, ("VISIBILITY", "MODEL_DATA", "WEIGHT", "FLAG", "UVW"))
    assert back.attrs["phase_center"] == [1.2345678901234, -0.456789012345]
    assert back.attrs["integration_time"] == 7.9937
    assert [p.name for p in tmp_path.iterdir()] == ["rt.ms"]


def test_choose_data_columns(tmp_path: Path) -> None:
    ds = make_ds(model=True)
    path = write_ms(ds, tmp_path / "d.ms", columns=["data"])
    with ct.table(str(path), ack=False) as t:
        assert "MODEL_DATA" not in t.colnames() and "DATA" in t.colnames()
    with pytest.raises(UsageError, match="CORRECTED_DATA"):
        write_ms(ds, tmp_path / "c.ms", columns=["DATA", "CORRECTED_DATA"])
    path = write_ms(ds, tmp_path / "m.ms", columns=["MODEL_DATA"])
    model_only = read_ms(path, columns=["MODEL_DATA"])
    assert "VISIBILITY" not in model_only
    assert np.array_equal(model_only.MODEL_DATA.values, ds.MODEL_DATA.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.ms", "m.ms"]


def test_main_table_columns(ds: xr.Dataset, ms_path: Path) -> None:
    with ct.table(str(ms_path), ack=False) as t:
        assert t.nrows() == NTIME * NANT * (NANT - 1) // 2
        assert t.getcolkeyword("UVW", "MEASINFO")["Ref"] == "J2000"
        assert t.getcolkeyword("TIME", "MEASINFO")["Ref"] == "UTC"
        assert t.getdminfo("DATA")["TYPE"] == "TiledColumnStMan"
        assert list(t.getdminfo("DATA")["SPEC"]["DEFAULTTILESHAPE"][:2]) == [4, NCHAN]
        assert list(t.getcoldesc("DATA")["shape"]) == [NCHAN, 4]
        assert t.getcoldesc("DATA")["valueType"] == "complex"
        for name in ("UVW", "WEIGHT", "SIGMA"):  # fixed-shape row arrays: tiled, no per-row cost
            assert t.getdminfo(name)["TYPE"] == "TiledColumnStMan"
        assert t.getdminfo("TIME")["SPEC"]["BUCKETSIZE"] >= 2**16
        assert list(t.getcoldesc("WEIGHT")["shape"]) == [4]
        assert "MODEL_DATA" not in t.colnames()
        time = t.getcol("TIME")
        assert np.array_equal(time, np.repeat(ds.time.values, ds.sizes["baseline"]))
        assert np.array_equal(t.getcol("TIME_CENTROID"), time)
        assert np.all(t.getcol("INTERVAL") == 7.9937) and np.all(t.getcol("EXPOSURE") == 7.9937)
        assert np.array_equal(t.getcol("ANTENNA1")[:21], ds.baseline_antenna1.values)
        assert np.array_equal(t.getcol("ANTENNA2")[21:42], ds.baseline_antenna2.values)
        w = ds.WEIGHT.values.reshape(-1, NCHAN, 4)
        np.testing.assert_allclose(t.getcol("WEIGHT"), w.mean(axis=1), rtol=1e-6)
        np.testing.assert_allclose(t.getcol("SIGMA"), 1 / np.sqrt(w.mean(axis=1)), rtol=1e-6)
        assert np.array_equal(t.getcol("FLAG_ROW"), ds.FLAG.values.reshape(-1, NCHAN * 4).all(axis=1))
        assert set(t.getcol("STATE_ID")) == {-1} and set(t.getcol("FIELD_ID")) == {0}


def test_taql_queries_the_ms(ms_path: Path) -> None:
    out = subprocess.run(["taql", f"select gcount() as N from {ms_path} where ANTENNA1 == 0"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == str(NTIME * (NANT - 1))
    res = ct.taql(f"select gcount() as N, gmax(ANTENNA2) as A from '{ms_path}'")
    assert res.getcol("N")[0] == NTIME * 21 and res.getcol("A")[0] == NANT - 1


def test_subtables(ds: xr.Dataset, ms_path: Path) -> None:
    def sub(name: str) -> ct.table:
        return ct.table(f"{ms_path}::{name}", ack=False)

    with sub("ANTENNA") as t:
        assert t.nrows() == NANT
        assert list(t.getcol("NAME")) == list(ds.antenna_name.values)
        assert set(t.getcol("MOUNT")) == {"alt-az"} and set(t.getcol("TYPE")) == {"GROUND-BASED"}
        assert np.array_equal(t.getcol("POSITION"), ds.ANTENNA_POSITION.values)
    with sub("FEED") as t:
        assert t.nrows() == NANT
        assert np.array_equal(t.getcol("ANTENNA_ID"), np.arange(NANT))
        assert [list(t.getcell("POLARIZATION_TYPE", i)) for i in range(NANT)] == [["X", "Y"]] * NANT
        assert set(t.getcol("NUM_RECEPTORS")) == {2}
    with sub("FIELD") as t:
        assert t.nrows() == 1 and t.getcell("NAME", 0) == "target"
        for col in ("PHASE_DIR", "DELAY_DIR", "REFERENCE_DIR"):
            assert t.getcell(col, 0).tolist() == [[1.2345678901234, -0.456789012345]]
            assert t.getcolkeyword(col, "MEASINFO")["Ref"] == "J2000"
    with sub("SPECTRAL_WINDOW") as t:
        assert t.nrows() == 1 and t.getcell("NUM_CHAN", 0) == NCHAN
        assert np.array_equal(t.getcell("CHAN_FREQ", 0), ds.frequency.values)
        assert t.getcell("MEAS_FREQ_REF", 0) == 5
        assert t.getcell("TOTAL_BANDWIDTH", 0) == pytest.approx(NCHAN * 1.23456e5)
        assert np.array_equal(t.getcell("EFFECTIVE_BW", 0), np.full(NCHAN, 1.23456e5))
    with sub("POLARIZATION") as t:
        assert t.getcell("CORR_TYPE", 0).tolist() == [9, 10, 11, 12]
        assert t.getcell("CORR_PRODUCT", 0).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    with sub("DATA_DESCRIPTION") as t:
        assert t.nrows() == 1 and t.getcell("SPECTRAL_WINDOW_ID", 0) == 0
    with sub("OBSERVATION") as t:
        assert t.getcell("TELESCOPE_NAME", 0) == "SKA-Low"
        t0, t1 = t.getcell("TIME_RANGE", 0)
        assert t0 == pytest.approx(ds.time.values[0] - 7.9937 / 2)
        assert t1 == pytest.approx(ds.time.values[-1] + 7.9937 / 2)
    for name, nrow in (("HISTORY", 0), ("POINTING", 0), ("STATE", 0)):
        with sub(name) as t:
            assert t.nrows() == nrow


def test_circular_and_stokes_polarizations(tmp_path: Path) -> None:
    ds = make_ds(pols=("RR", "LL"))
    path = write_ms(ds, tmp_path / "rl.ms")
    with ct.table(f"{path}::POLARIZATION", ack=False) as t:
        assert t.getcell("CORR_TYPE", 0).tolist() == [5, 8]
        assert t.getcell("CORR_PRODUCT", 0).tolist() == [[0, 0], [1, 1]]
    with ct.table(f"{path}::FEED", ack=False) as t:
        assert list(t.getcell("POLARIZATION_TYPE", 0)) == ["R", "L"]
    assert_same(ds, read_ms(path))
    assert read_ms(write_ms(make_ds(pols=("I",)), tmp_path / "i.ms")).polarization.values.tolist() == ["I"]
    with pytest.raises(UsageError, match="polarization"):
        write_ms(make_ds().assign_coords(polarization=["XX", "XY", "YX", "ZZ"]), tmp_path / "bad.ms")


def test_missing_and_reordered_rows(ds: xr.Dataset, ms_path: Path) -> None:
    with ct.table(str(ms_path), readonly=False, ack=False) as t:
        perm = np.random.default_rng(3).permutation(t.nrows())
        for col in ("DATA", "FLAG", "WEIGHT_SPECTRUM", "UVW", "TIME", "ANTENNA1", "ANTENNA2"):
            t.putcol(col, t.getcol(col)[perm])
        field = t.getcol("FIELD_ID")
        field[perm == 22] = 1  # time 1, baseline 1 (antennas 0-2) moves to another field
        t.putcol("FIELD_ID", field)
    back = read_ms(ms_path)
    # baselines come in first-appearance order; index them back to the original order
    key = back.baseline_antenna1.values * 100 + back.baseline_antenna2.values
    want = ds.baseline_antenna1.values * 100 + ds.baseline_antenna2.values
    back = back.isel(baseline=np.argsort(key)[np.searchsorted(np.sort(key), want)])
    assert np.array_equal(back.baseline_antenna2.values, ds.baseline_antenna2.values)
    assert back.FLAG.values[1, 1].all() and not back.VISIBILITY.values[1, 1].any()
    assert not back.WEIGHT.values[1, 1].any() and not back.UVW.values[1, 1].any()
    mask = np.ones((NTIME, 21), bool)
    mask[1, 1] = False
    for name in ("VISIBILITY", "FLAG", "WEIGHT", "UVW"):
        assert np.array_equal(back[name].values[mask], ds[name].values[mask]), name


@pytest.mark.parametrize("reorder", [False, True])
def test_written_columns_read_back(ms_path: Path, reorder: bool) -> None:
    from radioflow.vis.ms_columns import write_ms_columns

    if reorder:
        with ct.table(str(ms_path), readonly=False, ack=False) as t:
            perm = np.random.default_rng(4).permutation(t.nrows())
            for col in ("DATA", "FLAG", "WEIGHT_SPECTRUM", "UVW", "TIME", "ANTENNA1", "ANTENNA2"):
                t.putcol(col, t.getcol(col)[perm])
    ds = read_ms(ms_path)
    model = (ds.VISIBILITY.values * (2 - 1j)).astype(np.complex64)
    write_ms_columns(ms_path, {"MODEL_DATA": model, "FLAG": ~ds.FLAG.values})
    back = read_ms(ms_path, columns=["DATA", "MODEL_DATA"])
    assert np.array_equal(back.MODEL_DATA.values, model)
    assert np.array_equal(back.FLAG.values, ~ds.FLAG.values)
    assert np.array_equal(back.VISIBILITY.values, ds.VISIBILITY.values)


def test_duplicate_rows_keep_the_last(ds: xr.Dataset, ms_path: Path) -> None:
    with ct.table(str(ms_path), readonly=False, ack=False) as t:
        t.putcell("TIME", 30, ds.time.values[0])  # row of (time 1, baseline 9) now duplicates row 9
    back = read_ms(ms_path, chunks=2)
    assert np.array_equal(back.VISIBILITY.values[0, 9], ds.VISIBILITY.values[1, 9])
    assert back.FLAG.values[1, 9].all() and not back.VISIBILITY.values[1, 9].any()
    assert np.array_equal(back.VISIBILITY.values[2:], ds.VISIBILITY.values[2:])


def test_flag_row_flags_the_whole_row(ds: xr.Dataset, ms_path: Path) -> None:
    with ct.table(str(ms_path), readonly=False, ack=False) as t:
        t.putcell("FLAG_ROW", 30, True)  # time 1, baseline 9
    flag = read_ms(ms_path).FLAG.values
    assert flag[1, 9].all()
    flag[1, 9] = ds.FLAG.values[1, 9]
    assert np.array_equal(flag, ds.FLAG.values)


def test_weight_without_weight_spectrum(ds: xr.Dataset, ms_path: Path) -> None:
    with ct.table(str(ms_path), readonly=False, ack=False) as t:
        t.removecols("WEIGHT_SPECTRUM")
        t.putcol("WEIGHT", np.arange(t.nrows() * 4, dtype=np.float32).reshape(-1, 4))
    back = read_ms(ms_path)
    w = np.arange(NTIME * 21 * 4, dtype=np.float32).reshape(NTIME, 21, 1, 4)
    assert np.array_equal(back.WEIGHT.values, np.broadcast_to(w, back.WEIGHT.shape))


def test_selection_and_bad_paths(ms_path: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="FIELD has no row 1"):
        read_ms(ms_path, field=1)
    with pytest.raises(UsageError, match="spectral window 3"):
        read_ms(ms_path, spw=3)
    with pytest.raises(UsageError, match="CORRECTED_DATA"):
        read_ms(ms_path, columns=("DATA", "CORRECTED_DATA"))
    for bad in (tmp_path / "nothing.ms", tmp_path):
        with pytest.raises(UsageError, match=str(bad)):
            read_ms(bad)
    plain = tmp_path / "plain.tab"
    ct.table(str(plain), ct.maketabdesc([ct.makescacoldesc("X", 0)]), nrow=1, ack=False).close()
    with pytest.raises(UsageError, match="not a Measurement Set"):
        ms_summary(plain)


def test_overwrite_and_unwritable(ds: xr.Dataset, ms_path: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="already exists"):
        write_ms(ds, ms_path)
    other = make_ds(seed=9)
    write_ms(other, ms_path, overwrite=True)
    assert_same(other, read_ms(ms_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.ms"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="afile"):
        write_ms(ds, tmp_path / "afile" / "x.ms")
    with pytest.raises(UsageError, match="not a Measurement Set"):
        write_ms(ds, tmp_path / "afile", overwrite=True)


def _exploding(ds: xr.Dataset, bad_time: int) -> xr.Dataset:
    """``ds`` with a dask VISIBILITY whose chunk at ``bad_time`` raises when computed."""
    def chunk(i: int) -> np.ndarray:
        if i == bad_time:
            raise RuntimeError("disk on fire")
        return ds.VISIBILITY.values[i:i + 1]

    parts = [da.from_delayed(dask.delayed(chunk)(i), (1, *ds.VISIBILITY.shape[1:]), np.complex64)
             for i in range(ds.sizes["time"])]
    return ds.assign(VISIBILITY=(ds.VISIBILITY.dims, da.concatenate(parts)))


def test_failure_mid_write_leaves_old_ms_intact(ds: xr.Dataset, ms_path: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(msmod, "ROWS_PER_BLOCK", 21)  # one time step per block
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_ms(_exploding(make_ds(seed=5), bad_time=3), ms_path, overwrite=True)
    assert_same(ds, read_ms(ms_path))
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_ms(_exploding(ds, bad_time=4), tmp_path / "new.ms")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.ms"]
    with pytest.raises(UsageError, match="dtype"):
        write_ms(ds.assign(VISIBILITY=ds.VISIBILITY.astype(str)), tmp_path / "new.ms")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.ms"]


def test_lazy_read_and_streaming_copy(ds: xr.Dataset, ms_path: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = read_ms(ms_path, chunks={"time": 2, "frequency": 4})
    assert isinstance(lazy.VISIBILITY.data, da.Array)
    assert lazy.VISIBILITY.data.chunks[0] == (2, 2, 1) and lazy.VISIBILITY.data.chunks[2] == (4, 2)
    assert lazy.UVW.data.chunks[0] == (2, 2, 1)
    assert_same(ds, lazy.compute())
    monkeypatch.setattr(msmod, "ROWS_PER_BLOCK", 42)  # two time steps per block
    copy = write_ms(lazy, tmp_path / "copy.ms")
    assert_same(ds, read_ms(copy))


def test_ms_writer_blocks(ds: xr.Dataset, ms_path: Path, tmp_path: Path) -> None:
    with MSWriter(tmp_path / "w.ms", ds) as w:
        assert w.nrow == NTIME * 21
        assert not (tmp_path / "w.ms").exists()
        for t0 in (3, 0):  # blocks may come in any order
            w.write_block(ds.isel(time=slice(t0, t0 + 3)), t0)
    assert_same(ds, read_ms(tmp_path / "w.ms"))
    for col in ("DATA", "UVW", "TIME", "WEIGHT", "SIGMA", "FLAG_ROW", "ANTENNA1"):
        a = ct.table(str(ms_path), ack=False).getcol(col)
        b = ct.table(str(tmp_path / "w.ms"), ack=False).getcol(col)
        assert np.array_equal(a, b), col


def test_iter_ms_chunks(ms_path: Path) -> None:
    blocks = list(iter_ms_chunks(ms_path, rows_per_chunk=40, columns=["DATA", "TIME"]))
    assert [(b["startrow"], b["nrow"]) for b in blocks] == [(0, 40), (40, 40), (80, 25)]
    with ct.table(str(ms_path), ack=False) as t:
        assert np.array_equal(np.concatenate([b["DATA"] for b in blocks]), t.getcol("DATA"))
        assert np.array_equal(np.concatenate([b["TIME"] for b in blocks]), t.getcol("TIME"))
    everything = next(iter_ms_chunks(ms_path))
    assert everything["nrow"] == 105 and "FLAG_CATEGORY" not in everything and "WEIGHT_SPECTRUM" in everything
    with pytest.raises(UsageError, match="rows_per_chunk"):
        next(iter_ms_chunks(ms_path, rows_per_chunk=0))


def test_ms_summary(ds: xr.Dataset, ms_path: Path) -> None:
    s = ms_summary(ms_path)
    assert (s["nrows"], s["ntimes"], s["nbaselines"], s["nantennas"]) == (105, NTIME, 21, NANT)
    assert s["nchan"] == [NCHAN] and s["ncorr"] == [4] and s["telescope"] == "SKA-Low"
    assert s["freq_min_hz"] == ds.frequency.values[0] and s["freq_max_hz"] == ds.frequency.values[-1]
    assert s["phase_center"] == [1.2345678901234, -0.456789012345]
    assert s["time_range"][1] - s["time_range"][0] == pytest.approx(NTIME * 7.9937)
    assert "DATA" in s["columns"] and s["antennas"][0] == "S000"


def test_no_leftovers_after_copy_of_directory(ms_path: Path, tmp_path: Path) -> None:
    """A moved MS stays readable: subtable references are relative."""
    moved = shutil.move(str(ms_path), str(tmp_path / "elsewhere.ms"))
    assert ms_summary(moved)["nantennas"] == NANT


def test_second_field_selected_with_taql(ds: xr.Dataset, ms_path: Path) -> None:
    with ct.table(f"{ms_path}::FIELD", readonly=False, ack=False) as t:
        t.addrows(1)
        for col in ("PHASE_DIR", "DELAY_DIR", "REFERENCE_DIR"):
            t.putcell(col, 1, np.array([[0.5, 0.25]]))
        t.putcell("NAME", 1, "calibrator")
    with ct.table(str(ms_path), readonly=False, ack=False) as t:
        t.putcol("FIELD_ID", np.repeat(np.array([0, 1, 0, 1, 1], np.int32), 21))
    cal = read_ms(ms_path, field=1)
    assert cal.attrs["phase_center"] == [0.5, 0.25] and cal.attrs["field_name"] == "calibrator"
    assert np.array_equal(cal.time.values, ds.time.values[[1, 3, 4]])
    for name in ("VISIBILITY", "FLAG", "WEIGHT", "UVW"):
        assert np.array_equal(cal[name].values, ds[name].values[[1, 3, 4]]), name
    target = read_ms(ms_path, field=0, chunks=1)
    assert np.array_equal(target.VISIBILITY.values, ds.VISIBILITY.values[[0, 2]])


@pytest.mark.skipif(shutil.which("readms") is None, reason="casacore-tools readms not installed")
def test_casacore_measurementset_class_opens_it(ms_path: Path) -> None:
    """readms opens the MS with casacore's MeasurementSet class and CASA baseline selection."""
    out = subprocess.run(["readms", f"msname={ms_path}", "baselines=0&2", "weightspectrum=true"],
                         capture_output=True, text=True, check=True).stdout
    assert f"{NTIME} rows out of {NTIME * 21} have been read" in out


def test_stale_temporaries_of_dead_writers_are_removed(ds: xr.Dataset, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".obs.ms.tmp-{dead.pid}-0badc0de"
    stale_old = tmp_path / f".obs.ms.old-{dead.pid}-0badc0de"
    live = tmp_path / ".obs.ms.tmp-1-0badc0de"  # pid 1 is alive: maybe writing right now
    for d in (stale, stale_old, live):
        d.mkdir()
        (d / "table.dat").write_bytes(b"partial")
    write_ms(ds, tmp_path / "obs.ms")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "obs.ms"]


KILLED_WRITER = """
import sys, time
import dask, dask.array as da, numpy as np
sys.path.insert(0, {tests!r})
from test_ms import make_ds
from radioflow.vis import ms
ms.ROWS_PER_BLOCK = 21
ds = make_ds(seed=5)
def chunk(i):
    if i == 3:
        open({marker!r}, "w").close()
        time.sleep(60)
    return ds.VISIBILITY.values[i:i + 1]
parts = [da.from_delayed(dask.delayed(chunk)(i), (1, *ds.VISIBILITY.shape[1:]), np.complex64) for i in range(5)]
ms.write_ms(ds.assign(VISIBILITY=(ds.VISIBILITY.dims, da.concatenate(parts))), {path!r}, overwrite=True)
"""


def test_killed_writer_leaves_old_ms_and_rerun_completes(ds: xr.Dataset, ms_path: Path, tmp_path: Path) -> None:
    import sys
    import time

    marker = tmp_path / "marker"
    code = KILLED_WRITER.format(tests=str(Path(__file__).parent), marker=str(marker), path=str(ms_path))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "writer never reached the third block"
    proc.kill()
    proc.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".obs.ms.tmp-")]
    assert len(leftovers) == 1
    assert_same(ds, read_ms(ms_path))
    other = make_ds(seed=5)
    write_ms(other, ms_path, overwrite=True)
    assert_same(other, read_ms(ms_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "obs.ms"]


def test_spectral_window_selection_with_different_channel_counts(tmp_path: Path) -> None:
    """Two spectral windows of 6 and 3 channels (casacore msconcat); each reads back exactly."""
    a = make_ds(seed=1)
    b = a.isel(frequency=slice(0, 3)).assign(VISIBILITY=(a.VISIBILITY.dims, make_ds(seed=2).VISIBILITY.values[:, :, :3]))
    b = b.assign_coords(frequency=b.frequency.values + 1e7)  # antennas and field shared by both
    write_ms(a, tmp_path / "a.ms")
    write_ms(b, tmp_path / "b.ms")
    ct.msconcat([str(tmp_path / "a.ms"), str(tmp_path / "b.ms")], str(tmp_path / "c.ms"))
    s = ms_summary(tmp_path / "c.ms")
    assert s["nspw"] == 2 and s["nchan"] == [NCHAN, 3] and s["nrows"] == 2 * NTIME * 21
    assert_same(b, read_ms(tmp_path / "c.ms", spw=1))
    assert_same(a, read_ms(tmp_path / "c.ms", spw=0, chunks=2).compute())


def test_autocorrelations_round_trip(tmp_path: Path) -> None:
    base = make_ds()
    a1, a2 = baseline_pairs(NANT, autocorrelations=True)
    rng = np.random.default_rng(4)
    shape = (NTIME, a1.size, NCHAN, 4)
    ds = make_dataset(time=base.time.values, frequency=base.frequency.values, antenna1=a1, antenna2=a2,
                      uvw=np.where((a1 == a2)[None, :, None], 0.0, rng.normal(size=(NTIME, a1.size, 3))),
                      antenna_position=base.ANTENNA_POSITION.values, antenna_name=base.antenna_name.values,
                      phase_center=(0.1, 0.2), visibility=rng.normal(size=shape).astype(np.complex64),
                      integration_time=2.0)
    back = read_ms(write_ms(ds, tmp_path / "auto.ms"))
    assert back.sizes["baseline"] == NANT * (NANT + 1) // 2
    assert_same(ds, back)


def test_read_only_the_parallel_hands(ds: xr.Dataset, ms_path: Path) -> None:
    both = read_ms(ms_path, correlations=["XX", "YY"])
    assert list(both["polarization"].values) == ["XX", "YY"]
    for var in ("VISIBILITY", "WEIGHT", "FLAG"):
        np.testing.assert_array_equal(both[var].values, ds[var].values[..., [0, 3]])
    np.testing.assert_array_equal(both["UVW"].values, ds["UVW"].values)
    one = read_ms(ms_path, correlations=["XY"])
    np.testing.assert_array_equal(one["VISIBILITY"].values, ds["VISIBILITY"].values[..., [1]])
    with pytest.raises(UsageError, match="cannot select"):
        read_ms(ms_path, correlations=["RR"])
    with pytest.raises(UsageError, match="evenly spaced"):
        read_ms(ms_path, correlations=["XX", "XY", "YY"])


def test_extras_limit_the_variables_read(ds: xr.Dataset, ms_path: Path) -> None:
    full = read_ms(ms_path)
    part = read_ms(ms_path, extras=("UVW",))
    assert "FLAG" not in part and "WEIGHT" not in part
    assert np.array_equal(part.UVW.values, full.UVW.values)
    assert np.array_equal(part.VISIBILITY.values, full.VISIBILITY.values)
    with pytest.raises(UsageError, match="unknown extra"):
        read_ms(ms_path, extras=("SIGMA",))


def test_cached_row_grid_follows_a_changed_ms(ds: xr.Dataset, ms_path: Path) -> None:
    from radioflow.vis.ms_columns import write_ms_columns

    read_ms(ms_path, columns=[], extras=())
    with ct.table(str(ms_path), readonly=False, ack=False) as t:
        perm = np.random.default_rng(5).permutation(t.nrows())
        for col in ("DATA", "TIME", "ANTENNA1", "ANTENNA2"):
            t.putcol(col, t.getcol(col)[perm])
    write_ms_columns(ms_path, {"MODEL_DATA": ds.VISIBILITY.values})  # must map rows by the new grid
    ms_rows._GRID_CACHE.clear()
    back = read_ms(ms_path, columns=["MODEL_DATA"])
    assert np.array_equal(back.MODEL_DATA.values, ds.VISIBILITY.values)


def test_subtables_copied_from_the_source_ms(ds: xr.Dataset, ms_path: Path, tmp_path: Path) -> None:
    from radioflow.science.averaging import average_dataset

    avg = average_dataset(read_ms(ms_path), timestep=2, freqstep=4)
    out = write_ms(avg, tmp_path / "avg.ms", subtables_from=ms_path)
    built = write_ms(avg, tmp_path / "built.ms")
    back, ref = read_ms(out), read_ms(built)
    xr.testing.assert_identical(back, ref)
    with ct.table(str(out), ack=False) as t:
        assert t.info()["type"] == "Measurement Set" and t.getkeyword("MS_VERSION") == 2.0
        with ct.table(str(ms_path), ack=False) as src:
            assert set(t.getkeywords()) == set(src.getkeywords())
    with ct.table(f"{out}::SPECTRAL_WINDOW", ack=False) as t:
        assert t.nrows() == 1 and list(t.getcol("NUM_CHAN")) == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["avg.ms", "built.ms", "obs.ms"]


def test_subtables_built_when_the_source_has_two_fields(ds: xr.Dataset, ms_path: Path) -> None:
    from radioflow.vis.ms_subtables import copyable_subtables

    assert copyable_subtables(str(ms_path)) is not None
    with ct.table(f"{ms_path}::FIELD", readonly=False, ack=False) as t:
        t.addrows(1)
    assert copyable_subtables(str(ms_path)) is None
