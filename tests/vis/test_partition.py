"""Partitioning by time/frequency/group and exact concatenation."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from radioflow.errors import UsageError
from radioflow.vis import io
from radioflow.vis.partition import concat, concat_urls, parse_ranges, partition, split_frequency, split_time
from radioflow.vis.zarr import write_zarr


def test_equal_duration_time_split(small_vis):
    ds = small_vis(ntime=10)
    parts = split_time(ds, n=3)
    # 100 s observation, centres at 5..95 s -> bins of 33.3 s hold 3, 4, 3 integrations
    assert [p.sizes["time"] for p in parts] == [3, 4, 3]
    xr.testing.assert_identical(concat(parts[::-1]), ds)


def test_interval_split_drops_gaps(small_vis):
    ds = small_vis(ntime=8)
    t = ds.time.values.copy()
    t[4:] += 1000.0
    ds = ds.assign_coords(time=t)
    parts = split_time(ds, interval=40.0)
    assert [p.sizes["time"] for p in parts] == [4, 4]
    xr.testing.assert_identical(concat(parts), ds)
    with pytest.raises(UsageError, match="holds no time step"):
        split_time(ds, n=4)


def test_frequency_split_and_ranges(small_vis):
    ds = small_vis(nchan=8)
    parts = split_frequency(ds, n=3)
    assert [p.sizes["frequency"] for p in parts] == [3, 3, 2]
    xr.testing.assert_identical(concat(parts), ds)
    ranges = parse_ranges("100e6:102.5e6,102.5e6:110e6")
    parts = split_frequency(ds, ranges=ranges)
    assert [p.sizes["frequency"] for p in parts] == [3, 5]
    with pytest.raises(UsageError, match="holds no channel"):
        split_frequency(ds, ranges=[(1e9, 2e9)])


def test_bad_requests(small_vis):
    ds = small_vis(ntime=4)
    with pytest.raises(UsageError, match="between 1 and the number of time steps"):
        split_time(ds, n=5)
    a, b = split_time(ds, n=2)
    with pytest.raises(UsageError, match="overlap"):
        concat([a, a])


@pytest.mark.parametrize("fmt", ["zarr", "ms"])
def test_partition_urls_concat_exact(tmp_path, small_vis, fmt):
    ds = small_vis(ntime=9, nant=6, nchan=4, seed=5)
    src = str(tmp_path / f"obs.{fmt}")
    io.write_dataset(ds, src)
    original = io.open_dataset(src).load()
    urls = partition(src, str(tmp_path / "parts"), n=4)
    assert urls == [str(tmp_path / f"parts-{k:03d}.{fmt}") for k in range(4)]
    sizes = [io.open_dataset(u).sizes["time"] for u in urls]
    assert sum(sizes) == 9 and len(sizes) == 4
    out = concat_urls(urls[::-1], str(tmp_path / f"joined.{fmt}"))
    back = io.open_dataset(out).load()
    xr.testing.assert_identical(back, original)
    for name in original.variables:
        assert back[name].dtype == original[name].dtype


def test_partition_by_group(tmp_path, small_vis, local_dask):
    s3_prefix = f"memory://{tmp_path.name}"
    a = small_vis(seed=1)
    b = small_vis(seed=2, nchan=3)
    b.attrs["spw_id"] = 1
    src = f"{s3_prefix}/multi.zarr"
    write_zarr([a, b], src)
    urls = partition(src, f"{s3_prefix}/part", by="spw")
    assert urls == [f"{s3_prefix}/part-FIELD0_SPW0.zarr", f"{s3_prefix}/part-FIELD0_SPW1.zarr"]
    assert io.open_dataset(urls[0]).sizes["frequency"] == 8
    got = io.open_dataset(urls[1]).load()
    np.testing.assert_array_equal(got.VISIBILITY.values, b.VISIBILITY.values)
    assert got.sizes["frequency"] == 3


def test_cli_partition_and_concat(tmp_path, small_vis, capsys):
    from radioflow.cli import main

    ds = small_vis(ntime=8, seed=6)
    src = io.write_dataset(ds, str(tmp_path / "obs.zarr"))
    assert main(["vis", "partition", src, str(tmp_path / "p"), "--n", "4"]) == 0
    urls = capsys.readouterr().out.split()
    assert urls == [str(tmp_path / f"p-{k:03d}.zarr") for k in range(4)]
    assert main(["vis", "concat", *urls, str(tmp_path / "joined.zarr")]) == 0
    xr.testing.assert_identical(io.open_dataset(str(tmp_path / "joined.zarr")).load(), ds)
    assert main(["vis", "partition", src, str(tmp_path / "q"), "--n", "99"]) == 2
    assert "between 1 and the number of time steps (8)" in capsys.readouterr().err
    assert main(["vis", "partition", src, str(tmp_path / "q"), "--by", "frequency"]) == 2
