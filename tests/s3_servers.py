"""The real S3-compatible test servers (SeaweedFS ``weed mini``, else ``moto_server``) on
127.0.0.1: started by ``tests/conftest.py``'s ``s3_server`` fixture and by tests that must kill
their own server. A module of its own so tests import it by name (``conftest`` is ambiguous
when several test folders have one)."""
from __future__ import annotations

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
