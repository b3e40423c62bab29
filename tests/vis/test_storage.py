"""Storage URLs, S3 options and the atomic commit protocol."""
from __future__ import annotations

import logging

import pytest

from radioflow.errors import UsageError
from radioflow.vis import storage
from radioflow.vis.location import Location


def test_s3_options_from_config_by_reference_and_redacted(caplog):
    cfg = {"storage": {"s3": {"endpoint_url": "http://127.0.0.1:9", "region": "af-south-1",
                              "access_key_env": "MY_KEY", "secret_key_env": "MY_SECRET"}}}
    env = {"MY_KEY": "AKIDEXAMPLE", "MY_SECRET": "s3cr3t-value", "AWS_ENDPOINT_URL": "http://other"}
    opts = storage.s3_options(cfg, env)
    assert opts["key"] == "AKIDEXAMPLE" and opts["secret"] == "s3cr3t-value"
    assert opts["endpoint_url"] == "http://127.0.0.1:9"
    assert opts["client_kwargs"] == {"region_name": "af-south-1"}
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("options %s %r", opts, opts)
    for text in (repr(opts), str(opts), caplog.text):
        assert "s3cr3t-value" not in text and "AKIDEXAMPLE" not in text
    assert "***" in repr(opts)


def test_s3_options_from_aws_environment():
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL_S3": "http://e:1",
           "AWS_DEFAULT_REGION": "eu-west-1"}
    opts = storage.s3_options({}, env)
    assert (opts["key"], opts["secret"], opts["endpoint_url"]) == ("k", "s", "http://e:1")
    assert opts["client_kwargs"]["region_name"] == "eu-west-1"
    with pytest.raises(UsageError, match="MISSING_VAR"):
        storage.s3_options({"storage": {"s3": {"access_key_env": "MISSING_VAR"}}}, {})


def test_local_commit_is_atomic(tmp_path):
    url = str(tmp_path / "out.zarr")
    with pytest.raises(RuntimeError):
        with storage.atomic_write(url, fmt="zarr") as commit:
            (tmp_path / commit.url.split("/")[-1] / "part").write_bytes(b"x" * 10)
            raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []
    with storage.atomic_write(url, fmt="zarr") as commit:
        assert commit.url != url
        commit.location.fs.pipe_file(commit.location.join("part").path, b"abc")
        assert not (tmp_path / "out.zarr").exists()
    assert (tmp_path / "out.zarr" / "part").read_bytes() == b"abc"
    assert storage.read_marker(url)["version"] == commit.version


def test_unwritable_output_is_a_usage_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="Cannot create the folder"):
        with storage.atomic_write(str(tmp_path / "afile" / "x.zarr"), fmt="zarr"):
            pass


def test_object_store_marker_last(s3_prefix):
    url = f"{s3_prefix}/x.zarr"
    fs, path = Location.parse(url).fs, Location.parse(url).path
    with pytest.raises(RuntimeError):
        with storage.atomic_write(url, fmt="zarr"):
            fs.pipe_file(f"{path}/a", b"1")
            raise RuntimeError("writer died")
    assert storage.exists(url)
    with pytest.raises(UsageError, match="incomplete"):
        storage.require_complete(url)
    with storage.atomic_write(url, fmt="zarr") as commit:
        fs.pipe_file(f"{path}/b", b"2")
        assert storage.read_marker(url) is None
    assert storage.require_complete(url)["version"] == commit.version
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(path)) == [storage.MARKER, ".radioflow-manifest", "b"]
    with pytest.raises(UsageError, match="does not exist"):
        storage.require_complete(f"{s3_prefix}/nothing.zarr")
