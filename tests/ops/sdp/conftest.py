"""SDP fixtures: a real etcd server on 127.0.0.1 (Debian package ``etcd-server``) for the session,
and ``store_url``, parametrised so every store test runs on SQLite and on etcd."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory):
    """``http://127.0.0.1:PORT`` of an etcd started for the session (data in a temp dir), then stopped."""
    exe = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is not installed (Debian package etcd-server; .ci/run installs it)")
        pytest.skip("etcd is not installed (apt-get install etcd-server)")
    data = tmp_path_factory.mktemp("etcd")
    client, peer = _free_port(), _free_port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    log = open(data / "etcd.log", "wb")
    proc = subprocess.Popen(
        [exe, "--name", "radioflow-test", "--data-dir", str(data / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"radioflow-test={peer_url}", "--logger", "zap", "--log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/version", timeout=1)
            break
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"etcd did not start: {(data / 'etcd.log').read_text()[-2000:]}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request, tmp_path) -> str:
    """A fresh configuration database: a SQLite file, or a new namespace on the test etcd."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sdp.db'}"
    server = request.getfixturevalue("etcd_server")
    return f"etcd://{server.split('://', 1)[1]}/t{uuid.uuid4().hex[:10]}"
