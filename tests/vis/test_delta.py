"""Delta overlays over read-only bases (local and S3), chains, squash, history."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from radioflow.errors import UsageError
from radioflow.vis import io, storage
from radioflow.vis.delta import history, open_delta, squash, write_delta
from radioflow.vis.location import Location
from radioflow.vis.zarr import write_zarr


def test_s3_delta_writes_only_new_columns_and_leaves_base_untouched(s3_prefix, small_vis):
    ds = small_vis(ntime=8, nant=8, nchan=16, seed=4)
    base = write_zarr(ds, f"{s3_prefix}/base.zarr")
    tags_before = storage.etags(base)
    base_bytes = storage.du(base)

    opened = io.open_dataset(base)
    new_flag = opened.FLAG | (np.abs(opened.VISIBILITY) > 2.0)
    corrected = (opened.VISIBILITY * 0.5).astype(np.complex64)
    delta = write_delta(xr.Dataset({"FLAG": new_flag, "CORRECTED_DATA": corrected}),
                        f"{s3_prefix}/step1.zarr", parent=base)

    assert storage.etags(base) == tags_before
    fs, path = Location.parse(delta).fs, Location.parse(delta).path
    rel = [key[len(path) + 1:].split("/") for key in fs.find(path)]
    arrays = sorted({r[1] for r in rel if len(r) > 2})
    assert arrays == ["CORRECTED_DATA", "FLAG"]
    delta_bytes = storage.du(delta)
    col = {v: storage.du(f"{base}/FIELD0_SPW0/{v}") for v in ("VISIBILITY", "FLAG", "WEIGHT", "UVW")}
    # the overlay holds a FLAG and a VISIBILITY-sized column plus metadata, nothing else
    assert delta_bytes < col["FLAG"] * 1.5 + col["VISIBILITY"] * 1.05 + 30_000
    assert delta_bytes < base_bytes - col["WEIGHT"] - col["UVW"]

    merged = io.open_dataset(delta).load()
    np.testing.assert_array_equal(merged.FLAG.values, new_flag.values)
    np.testing.assert_array_equal(merged.CORRECTED_DATA.values, ds.VISIBILITY.values * 0.5)
    np.testing.assert_array_equal(merged.VISIBILITY.values, ds.VISIBILITY.values)
    assert merged.FLAG.values.sum() > ds.FLAG.values.sum()
    xr.testing.assert_identical(merged.drop_vars(["FLAG", "CORRECTED_DATA"]), ds.drop_vars("FLAG"))


def test_chain_of_three_and_squash(tmp_path, small_vis):
    ds = small_vis(seed=7)
    base = io.write_dataset(ds, str(tmp_path / "base.ms"))
    d1 = write_delta({"FLAG": ds.FLAG | (ds.WEIGHT < 0.2)}, str(tmp_path / "d1.zarr"), parent=base)
    d2 = write_delta(xr.Dataset({"CORRECTED_DATA": ds.VISIBILITY * 2}), str(tmp_path / "d2.zarr"), parent=d1)
    d3 = write_delta(xr.Dataset({"WEIGHT": ds.WEIGHT * 3}), str(tmp_path / "d3.zarr"), parent=d2)
    chain = history(d3)
    assert [c["url"] for c in chain] == [d3, d2, d1, base]
    assert [c["kind"] for c in chain] == ["delta", "delta", "delta", "dataset"]
    assert chain[0]["variables"] == {"FIELD0_SPW0": ["WEIGHT"]}
    assert chain[1]["parent_version"] == storage.version_id(d1)

    merged = io.open_dataset(d3).load()
    np.testing.assert_array_equal(merged.FLAG.values, (ds.FLAG | (ds.WEIGHT < 0.2)).values)
    np.testing.assert_array_equal(merged.CORRECTED_DATA.values, (ds.VISIBILITY * 2).values)
    np.testing.assert_allclose(merged.WEIGHT.values, ds.WEIGHT.values * 3, rtol=0)
    for dst in ("squashed.zarr", "squashed.ms"):
        out = squash(d3, str(tmp_path / dst))
        back = io.open_dataset(out).load()
        xr.testing.assert_identical(back, merged)


def test_update_existing_delta_and_parent_change_detected(tmp_path, small_vis):
    ds = small_vis(seed=8)
    base = write_zarr(ds, str(tmp_path / "base.zarr"))
    delta = str(tmp_path / "d.zarr")
    write_delta({"FLAG": ~ds.FLAG}, delta, parent=base)
    v1 = storage.version_id(delta)
    write_delta({"MODEL_DATA": ds.VISIBILITY * 0}, delta)
    assert storage.version_id(delta) != v1
    merged = open_delta(delta).load()
    np.testing.assert_array_equal(merged.FLAG.values, ~ds.FLAG.values)
    assert float(np.abs(merged.MODEL_DATA).max()) == 0.0
    assert history(delta)[0]["variables"] == {"FIELD0_SPW0": ["FLAG", "MODEL_DATA"]}

    write_zarr(small_vis(seed=9), base, overwrite=True)
    with pytest.raises(UsageError, match="changed since the delta was written"):
        io.open_dataset(delta)


def test_delta_shape_mismatch_is_refused(tmp_path, small_vis):
    ds = small_vis()
    base = write_zarr(ds, str(tmp_path / "base.zarr"))
    with pytest.raises(UsageError, match="must cover the whole base"):
        write_delta({"FLAG": ds.FLAG.isel(time=slice(0, 2))}, str(tmp_path / "d.zarr"), parent=base)
    with pytest.raises(UsageError, match="give its parent"):
        write_delta({"FLAG": ds.FLAG}, str(tmp_path / "e.zarr"))


def test_cli_history_and_squash(tmp_path, small_vis, capsys):
    from radioflow.cli import main

    ds = small_vis(seed=10)
    base = write_zarr(ds, str(tmp_path / "base.zarr"))
    d1 = write_delta({"FLAG": ~ds.FLAG}, str(tmp_path / "d1.zarr"), parent=base)
    assert main(["vis", "history", d1]) == 0
    out = capsys.readouterr().out
    assert "delta" in out and "FLAG" in out and storage.version_id(base)[:12] in out
    assert main(["vis", "squash", d1, str(tmp_path / "flat.zarr")]) == 0
    np.testing.assert_array_equal(io.open_dataset(str(tmp_path / "flat.zarr")).FLAG.values, ~ds.FLAG.values)
    assert main(["vis", "history", str(tmp_path / "nothing.zarr")]) == 2
