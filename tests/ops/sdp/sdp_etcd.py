"""Starting and stopping a real etcd on 127.0.0.1 for the SDP tests (Debian package ``etcd-server``)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str:
    """The etcd executable (skip locally, fail in CI when it is missing)."""
    exe = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is not installed (Debian package etcd-server; .ci/run installs it)")
        pytest.skip("etcd is not installed (apt-get install etcd-server)")
    return exe


def start_etcd(data: Path, client: int | None = None, peer: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start etcd on 127.0.0.1 with its data in ``data``; return the process and its client URL."""
    exe = etcd_binary()
    client, peer = client or _free_port(), peer or _free_port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    log = open(data / "etcd.log", "ab")
    proc = subprocess.Popen(
        [exe, "--name", "radioflow-test", "--data-dir", str(data / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"radioflow-test={peer_url}", "--logger", "zap", "--log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/version", timeout=1)
            return proc, url
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"etcd did not start: {(data / 'etcd.log').read_text()[-2000:]}")
            time.sleep(0.1)


def stop_etcd(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
