"""Worker-importable items for the backend tests (on PYTHONPATH for every worker process).

Stand-ins for :func:`radioflow.invoke.execute.execute` with the same signature, plus plain
python-cab functions. Each computes a deterministic numpy result from its parameters.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from radioflow.invoke import Invocation, Result


def compute(seed: int, out: str, n: int = 4096, delay: float = 0.0) -> dict:
    """A python cab: seeded FFT power spectrum written atomically to ``out``; returns its sha256."""
    time.sleep(delay)
    rng = np.random.default_rng(seed)
    data = np.abs(np.fft.rfft(rng.standard_normal(n))) ** 2
    # A payload full of newline bytes: a transfer that splits at b"\n" would corrupt it.
    payload = data.astype("<f8").tobytes() + bytes([10]) * 64
    tmp = Path(out).with_name(Path(out).name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, out)
    return {"sha256": hashlib.sha256(payload).hexdigest(), "pid": os.getpid()}


def fake_execute(inv: Invocation) -> Result:
    """Execute stand-in: call :func:`compute` with the invocation's params."""
    started = time.time()
    outputs = compute(**inv.params)
    return Result(step=inv.step, ok=True, outputs=outputs, log=f"{inv.step} ok\n", started=started, finished=time.time())


def flaky_execute(inv: Invocation) -> Result:
    """Fails on the first attempt (leaves a marker file), succeeds on the next."""
    marker = Path(inv.params["marker"])
    if not marker.exists():
        marker.write_text("tried")
        return Result(step=inv.step, ok=False, returncode=3, log="first attempt failed\n", error="transient")
    return Result(step=inv.step, ok=True, outputs={"attempts": 2}, log="second attempt ok\n")


def failing_execute(inv: Invocation) -> Result:
    """Always fails, counting its attempts in a file."""
    counter = Path(inv.params["counter"])
    with counter.open("a") as fh:
        fh.write("x")
    return Result(step=inv.step, ok=False, returncode=7, log="cab said: boom\n", error="cab exited with code 7")


def raising_execute(inv: Invocation) -> Result:
    """Raises instead of returning (a bug in a cab wrapper)."""
    raise ValueError(f"bad value in {inv.step}")


def nested_execute(inv: Invocation) -> Result:
    """Runs a dask-array computation inside the step; reports which scheduler ran it."""
    import dask.array as da
    from dask.base import get_scheduler

    total = float(da.ones((400, 400), chunks=100).sum().compute())
    sched = get_scheduler()
    owner = getattr(sched, "__self__", None)
    address = getattr(getattr(owner, "scheduler", None), "address", None)
    return Result(step=inv.step, ok=True, outputs={"total": total, "scheduler": address})


def sleep_execute(inv: Invocation) -> Result:
    """Sleeps for ``params['seconds']``."""
    time.sleep(inv.params["seconds"])
    return Result(step=inv.step, ok=True, outputs={"slept": inv.params["seconds"]})


#: A python cab running :func:`compute` through the real ``radioflow.invoke.execute.execute``.
COMPUTE_CAB = {
    "name": "compute",
    "flavour": "python",
    "command": "rf_items.compute",
    "inputs": {"seed": {"dtype": "int", "required": True}, "n": {"dtype": "int", "default": 4096},
               "delay": {"dtype": "float", "default": 0.0}},
    "outputs": {"out": {"dtype": "File", "required": True}},
}


def s3_roundtrip(src: str, dst: str, endpoint: str) -> dict:
    """A python cab over an object store: read ``src`` (by URL), write its FFT power to ``dst``."""
    import fsspec

    opts = {"client_kwargs": {"endpoint_url": endpoint}, "skip_instance_cache": True}
    with fsspec.open(src, "rb", **opts) as fh:
        raw = fh.read()
    power = np.abs(np.fft.rfft(np.frombuffer(raw, dtype="<f8"))) ** 2
    out = power.astype("<f8").tobytes()
    with fsspec.open(dst, "wb", **opts) as fh:
        fh.write(out)
    return {"in_sha256": hashlib.sha256(raw).hexdigest(), "out_sha256": hashlib.sha256(out).hexdigest(),
            "nbytes": len(raw)}


S3_CAB = {
    "name": "s3-roundtrip",
    "flavour": "python",
    "command": "rf_items.s3_roundtrip",
    "inputs": {"src": {"dtype": "URL", "required": True}, "endpoint": {"dtype": "str", "required": True}},
    "outputs": {"dst": {"dtype": "URL", "required": True}},
}


def dying_execute(inv: Invocation) -> Result:
    """SIGKILLs its own process on the first attempt (leaves a marker), succeeds on the next."""
    import signal

    marker = Path(inv.params["marker"])
    if not marker.exists():
        marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return Result(step=inv.step, ok=True, outputs={"survived": True, "pid": os.getpid()})


def work(out: str, cpu: float = 0.0, alloc_mb: int = 0, write_mb: int = 0) -> dict:
    """A python cab that burns ``cpu`` seconds of CPU, holds ``alloc_mb`` MiB resident and writes
    ``write_mb`` MiB to ``out`` (the accounting tests)."""
    start = time.process_time()
    spins = 0
    while time.process_time() - start < cpu:
        spins += 1
    block = np.ones(alloc_mb * 2 ** 20, dtype=np.uint8)   # every page written: resident
    held = int(block[:: 1 << 12].sum())
    del block
    chunk = b"x" * 2 ** 20
    with open(out, "wb") as fh:
        for _ in range(write_mb):
            fh.write(chunk)
    return {"spins": spins, "held": held}


WORK_CAB = {
    "name": "work",
    "flavour": "python",
    "command": "rf_items.work",
    "inputs": {"cpu": {"dtype": "float", "default": 0.0}, "alloc_mb": {"dtype": "int", "default": 0},
               "write_mb": {"dtype": "int", "default": 0}},
    "outputs": {"out": {"dtype": "File", "required": True}},
}
