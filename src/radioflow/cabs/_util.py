"""Small helpers shared by the cab entry points."""
from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

import xarray as xr

log = logging.getLogger("radioflow.cabs")

ARCSEC = math.pi / 180 / 3600


def say(message: str) -> None:
    """A summary line: in the step log, and shown on the console by the runner."""
    from ..run.progress import SUMMARY_MARK

    print(f"{SUMMARY_MARK}{message}", flush=True)
    log.info(message)


def write_zarr_atomic(ds: xr.Dataset, path: str | os.PathLike) -> str:
    """Write a small dataset as a Zarr directory: aside first, then renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.to_zarr(tmp, mode="w", consolidated=False, zarr_format=2)
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return str(path)
