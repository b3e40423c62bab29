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
    from ..invoke.markers import SUMMARY_MARK

    print(f"{SUMMARY_MARK}{message}", flush=True)
    log.info(message)


def load_dataset(url: str, columns: list[str]) -> xr.Dataset:
    """The visibility dataset a cab works on: a local MS read eagerly with just ``columns`` (the
    fastest path), any other dataset (Zarr or a delta, local or S3) opened by URL."""
    from ..vis import storage
    from ..vis.io import format_of, open_dataset

    if format_of(url) == "ms" and storage.is_local(url):
        from ..vis.ms import read_ms

        return read_ms(storage.split_protocol(url)[1], columns=columns)
    return open_dataset(url)


def write_zarr_atomic(ds: xr.Dataset, path: str | os.PathLike) -> str:
    """Write a small dataset as a Zarr store: aside first, then moved into place (local or S3)."""
    from ..vis import storage

    if not storage.is_local(str(path)):
        with storage.atomic_write(str(path), fmt="zarr", overwrite=True) as commit:
            ds.to_zarr(storage.zarr_store(commit.url, read_only=False), mode="w", consolidated=False, zarr_format=2)
        return commit.final_url
    path = Path(storage.split_protocol(str(path))[1])
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
