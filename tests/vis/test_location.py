"""Dataset locations: parsed once, joined without pathlib, credentials kept by reference."""
from __future__ import annotations

import pickle

import pytest

from radioflow.cabs._util import load_dataset
from radioflow.errors import UsageError
from radioflow.vis import io, location
from radioflow.vis.location import Location, as_location, is_remote, local_path
from radioflow.vis.zarr import write_zarr


def test_parse_protocols(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s3 = Location.parse("s3://bucket/a/b.zarr/")
    assert (s3.protocol, s3.path, s3.url) == ("s3", "bucket/a/b.zarr", "s3://bucket/a/b.zarr")
    assert Location.parse("s3a://bucket/x").url == "s3://bucket/x"
    assert Location.parse("x.ms") == Location.parse(f"file://{tmp_path}/x.ms") == Location("file", str(tmp_path / "x.ms"))
    assert Location.parse("~/y.ms").path.endswith("/y.ms") and "~" not in Location.parse("~/y.ms").path
    assert Location.parse("memory://a/b").url == "memory:///a/b"
    with pytest.raises(UsageError, match="gs://b/x.zarr"):
        Location.parse("gs://b/x.zarr")


def test_joins_never_collapse_the_scheme():
    loc = Location.parse("s3://bucket/run/obs.zarr")
    assert loc.join("FIELD0_SPW0", "VISIBILITY").url == "s3://bucket/run/obs.zarr/FIELD0_SPW0/VISIBILITY"
    assert loc.parent.url == "s3://bucket/run"
    assert loc.with_name("obs-delta.zarr").url == "s3://bucket/run/obs-delta.zarr"
    assert loc.name == "obs.zarr"
    assert Location.parse("memory:///x").parent.url == "memory:///"
    assert io.default_delta_url("s3://bucket/run/obs.zarr") == "s3://bucket/run/obs-delta.zarr"


def test_is_remote_and_local_path(tmp_path):
    for text in ("s3://b/k", "memory:///k", "http://host/x.fits", Location.parse("s3://b/k")):
        assert is_remote(text) and local_path(text) is None
    for text in ("rel/x.ms", "/abs/x.ms", f"file://{tmp_path}/x.ms", Location.parse(str(tmp_path))):
        assert not is_remote(text)
    assert local_path("rel/x.ms", "/base") == "/base/rel/x.ms"
    assert local_path(f"file://{tmp_path}/x.ms", "/base") == f"{tmp_path}/x.ms"


def test_credentials_by_reference_never_shown_or_pickled(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    loc = Location.parse("s3://bucket/x.zarr", token="tok-value")
    assert loc.storage_options["secret"] == "s3cr3t-value"        # resolved on use
    shown = f"{loc!r} {loc} {loc.options!r} {loc.storage_options!r}"
    for secret in ("AKIDEXAMPLE", "s3cr3t-value", "tok-value"):
        assert secret not in shown
    state = pickle.dumps(loc)
    assert b"s3cr3t-value" not in state and b"AKIDEXAMPLE" not in state
    back = pickle.loads(state)
    assert back == loc and back.options["token"] == "tok-value" and "storage_options" not in back.__dict__
    # derived locations share the resolved options instead of resolving them again
    assert loc.join("a").__dict__["storage_options"] is loc.storage_options


def test_as_location_keeps_an_existing_location():
    loc = Location.parse("memory:///a.zarr")
    assert as_location(loc) is loc
    assert as_location(loc, anon=True).options == {"anon": True}


class _Counter:
    """Counts Location.parse calls and S3 option resolutions (each reads the config)."""

    def __init__(self, monkeypatch):
        self.parsed: list[str] = []
        self.resolved = 0
        parse, options = Location.parse, location.s3_options

        def counting_parse(cls, url, **kw):
            self.parsed.append(str(url))
            return parse(url, **kw)

        def counting_options(*a, **kw):
            self.resolved += 1
            return options(*a, **kw)

        monkeypatch.setattr(Location, "parse", classmethod(counting_parse))
        monkeypatch.setattr(location, "s3_options", counting_options)

    def reset(self) -> None:
        self.parsed, self.resolved = [], 0


def test_load_dataset_parses_its_url_once_local(tmp_path, small_vis, monkeypatch):
    ds = small_vis()
    zarr_url = write_zarr(ds, str(tmp_path / "a.zarr"))
    ms_url = io.write_dataset(ds, str(tmp_path / "a.ms"))
    count = _Counter(monkeypatch)
    for url in (zarr_url, ms_url):
        count.reset()
        load_dataset(url, columns=["DATA"])
        assert count.parsed == [url]


def test_load_dataset_parses_its_url_once_s3(tmp_path, s3_prefix, small_vis, monkeypatch):
    monkeypatch.setenv("RADIOFLOW_CACHE__DIR", str(tmp_path / "cache"))
    ds = small_vis()
    zarr_url = write_zarr(ds, f"{s3_prefix}/a.zarr")
    ms_url = io.write_dataset(ds, f"{s3_prefix}/a.ms")
    delta_url = io.write_columns(zarr_url, {"MODEL_DATA": ds.VISIBILITY.values})
    count = _Counter(monkeypatch)
    for url in (zarr_url, ms_url):
        count.reset()
        got = load_dataset(url, columns=["DATA"])
        assert got.VISIBILITY.shape == ds.VISIBILITY.shape
        assert count.parsed == [url] and count.resolved == 1
    count.reset()
    merged = load_dataset(delta_url, columns=["DATA"])
    assert "MODEL_DATA" in merged
    # the delta and its parent (named in the delta's attributes): one parse each
    assert count.parsed == [delta_url, zarr_url] and count.resolved == 2
