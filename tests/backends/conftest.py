"""Shared fixtures for the backend tests: worker-importable items and free loopback ports."""
from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="session", autouse=True)
def items_on_worker_path():
    """Put ``rf_items`` on the path of this process and of every worker it starts."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = HERE + (os.pathsep + old if old else "")
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    yield
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies (no orphaned dask processes)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class ExternalDask:
    """A real `dask scheduler` and worker processes on 127.0.0.1, started as subprocesses."""

    def __init__(self, tmp: Path, n_workers: int = 2) -> None:
        import subprocess
        import time

        bindir = Path(sys.executable).parent
        self.scheduler_file = tmp / "scheduler.json"
        self.procs: list = []
        self.scheduler = subprocess.Popen(
            [str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(free_port()),
             "--dashboard-address", f"127.0.0.1:{free_port()}", "--scheduler-file", str(self.scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        import json

        deadline = time.time() + 60
        info = None
        while info is None and time.time() < deadline:  # the scheduler writes the file in pieces
            try:
                info = json.loads(self.scheduler_file.read_text())
            except (OSError, ValueError):
                time.sleep(0.1)
        if info is None:
            raise RuntimeError(f"dask scheduler did not write {self.scheduler_file} within 60 s")
        self.address = info["address"]
        self.workers = [self.start_worker() for _ in range(n_workers)]

    def start_worker(self):
        import subprocess

        bindir = Path(sys.executable).parent
        proc = subprocess.Popen(
            [str(bindir / "dask"), "worker", "--scheduler-file", str(self.scheduler_file), "--nthreads", "1",
             "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            client.wait_for_workers(n, timeout=60)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                proc.kill()


@pytest.fixture(scope="session")
def external_dask(tmp_path_factory):
    """`dask scheduler` + two `dask worker --no-nanny` processes on loopback."""
    cluster = ExternalDask(tmp_path_factory.mktemp("dask-ext"))
    try:
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def local_dask():
    """One DaskBackend on a two-process LocalCluster per test module (startup is slow).

    Not per session: while it lives its Client is the process's default dask scheduler, and
    other packages' tests must not compute on it.
    """
    from radioflow.backends.dask import DaskBackend

    backend = DaskBackend({"n_workers": 2, "retries": 1, "show_dashboard": False})
    yield backend
    backend.close()


@contextmanager
def target(backend, dotted: str):
    """Temporarily make ``backend`` run ``dotted`` instead of radioflow.invoke.execute.execute."""
    from radioflow.backends import _remote

    backend._target = dotted
    try:
        yield backend
    finally:
        backend._target = _remote.EXECUTE
