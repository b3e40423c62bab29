"""Zarr stores: exact round trips on local disk, memory and a real S3 server."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from radioflow.errors import UsageError
from radioflow.vis import storage
from radioflow.vis.location import Location
from radioflow.vis.zarr import list_groups, parse_chunks, read_zarr, write_zarr


def _assert_exact(back: xr.Dataset, ds: xr.Dataset) -> None:
    back = back.load()
    xr.testing.assert_identical(back, ds)
    assert back.attrs == ds.attrs
    for name, var in ds.variables.items():
        assert back[name].dtype == var.dtype, name


@pytest.mark.parametrize("where", ["local", "memory"])
def test_round_trip_exact(where, tmp_path, small_vis, local_dask):
    ds = small_vis()
    ds["MODEL_DATA"] = ds.VISIBILITY * 2
    ds["VISIBILITY"][0, 0, 0, 0] = np.nan + 1j
    url = str(tmp_path / "x.zarr") if where == "local" else f"memory://rt-{tmp_path.name}/x.zarr"
    assert write_zarr(ds, url, chunks={"time": 4, "frequency": 3}) == Location.parse(url).url
    back = read_zarr(url)
    assert back.VISIBILITY.data.chunks[0] == (4, 2)
    assert back.VISIBILITY.data.chunks[2] == (3, 3, 2)
    _assert_exact(back, ds)


def test_round_trip_s3_exact(s3_prefix, small_vis):
    ds = small_vis(ntime=7, nchan=5, seed=3)
    url = f"{s3_prefix}/obs.zarr"
    write_zarr(ds, url)
    marker = storage.read_marker(url)
    assert marker is not None and len(marker["version"]) == 32
    _assert_exact(read_zarr(url), ds)


def test_s3_wrong_credentials_refused(s3_prefix, small_vis, monkeypatch):
    url = f"{s3_prefix}/obs.zarr"
    write_zarr(small_vis(), url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(UsageError, match="denied"):
        read_zarr(url)


def test_several_groups(tmp_path, small_vis):
    a = small_vis(seed=1)
    b = small_vis(seed=2, nchan=3)
    b.attrs["spw_id"] = 1
    url = str(tmp_path / "multi.zarr")
    write_zarr([a, b], url)
    assert list_groups(url) == ["FIELD0_SPW0", "FIELD0_SPW1"]
    _assert_exact(read_zarr(url, spw=1), b)
    _assert_exact(read_zarr(url, field=0, spw=0), a)
    with pytest.raises(UsageError, match="no group FIELD3_SPW0"):
        read_zarr(url, field=3)


def test_overwrite_rules(tmp_path, small_vis):
    url = str(tmp_path / "x.zarr")
    write_zarr(small_vis(seed=1), url)
    v1 = storage.version_id(url)
    with pytest.raises(UsageError, match="already exists"):
        write_zarr(small_vis(seed=2), url)
    write_zarr(small_vis(seed=2), url, overwrite=True)
    assert storage.version_id(url) != v1
    _assert_exact(read_zarr(url), small_vis(seed=2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.zarr"]


def test_dask_backed_write_is_chunked(tmp_path, small_vis):
    ds = small_vis(ntime=10).chunk({"time": 3})
    url = str(tmp_path / "x.zarr")
    write_zarr(ds, url, chunks="time=5,frequency=4")
    back = read_zarr(url)
    assert back.FLAG.data.chunks[0] == (5, 5)
    _assert_exact(back, ds.load())


def test_parse_chunks_errors():
    assert parse_chunks("time=10,frequency=64") == {"time": 10, "frequency": 64}
    with pytest.raises(UsageError, match="baseline"):
        parse_chunks("baseline=3")
    with pytest.raises(UsageError, match="integer"):
        parse_chunks("time=abc")
