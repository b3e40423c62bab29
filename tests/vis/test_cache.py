"""Local column cache for datasets on S3: reuse, invalidation by version, LRU bound."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from radioflow.errors import UsageError
from radioflow.vis import io, storage
from radioflow.vis.cache import ColumnCache, evict, parse_size
from radioflow.vis.zarr import read_zarr, write_zarr


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_columns_read_are_cached_reused_and_invalidated(tmp_path, s3_prefix, small_vis):
    ds = small_vis(ntime=8, seed=21)
    url = write_zarr(ds, f"{s3_prefix}/obs.zarr", chunks={"time": 4})
    cache = ColumnCache(tmp_path / "cache", max_bytes="1GB")

    store = cache.store(url)
    vis = read_zarr(url, store=store).VISIBILITY.values
    np.testing.assert_array_equal(vis, ds.VISIBILITY.values)
    cached = _files(cache.root)
    assert any("/VISIBILITY/c/" in f for f in cached)
    assert not any("/FLAG/c/" in f for f in cached)  # only what was read
    first_misses = store.misses
    assert first_misses >= 2

    again = cache.store(url)
    np.testing.assert_array_equal(read_zarr(url, store=again).VISIBILITY.values, vis)
    assert again.misses == 0 and again.hits >= 2

    write_zarr(small_vis(ntime=8, seed=22), url, overwrite=True)
    fresh = cache.store(url)
    got = read_zarr(url, store=fresh).VISIBILITY.values
    np.testing.assert_array_equal(got, small_vis(ntime=8, seed=22).VISIBILITY.values)
    assert fresh.misses >= 2
    versions = os.listdir(cache.url_dir(url))
    assert versions == [storage.version_id(url)]


def test_open_dataset_uses_configured_cache(tmp_path, s3_prefix, small_vis, monkeypatch):
    monkeypatch.setenv("RADIOFLOW_CACHE__DIR", str(tmp_path / "cfgcache"))
    ds = small_vis(seed=23)
    url = write_zarr(ds, f"{s3_prefix}/obs.zarr")
    np.testing.assert_array_equal(io.open_dataset(url).FLAG.values, ds.FLAG.values)
    assert any("/FLAG/c/" in f for f in _files(tmp_path / "cfgcache"))
    ms_url = io.write_dataset(ds, f"{s3_prefix}/obs.ms")
    assert io.open_dataset(ms_url).VISIBILITY.shape == ds.VISIBILITY.shape
    staged = [f for f in _files(tmp_path / "cfgcache") if f.endswith("obs.ms/table.dat")]
    assert len(staged) == 1
    stamp = os.stat(tmp_path / "cfgcache" / staged[0]).st_mtime_ns
    np.testing.assert_array_equal(io.open_dataset(ms_url).VISIBILITY.values, ds.VISIBILITY.values)
    assert os.stat(tmp_path / "cfgcache" / staged[0]).st_mtime_ns == stamp  # not downloaded again


def test_lru_eviction(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    now = time.time()
    for k in range(5):
        path = root / f"f{k}"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 100 + k, now - 100 + k))
    os.utime(root / "f0", (now, now))  # recently used
    freed = evict(root, 2500)
    assert freed == 3000
    assert sorted(os.listdir(root)) == ["f0", "f4"]


def test_parse_size():
    assert parse_size("20GB") == 20 * 10**9
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size(1234) == 1234
    with pytest.raises(UsageError, match="cache.max_bytes"):
        parse_size("lots")
