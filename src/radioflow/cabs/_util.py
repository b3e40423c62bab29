"""Small helpers shared by the cab entry points."""
from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

import xarray as xr

from ..vis.location import Location, as_location

log = logging.getLogger("radioflow.cabs")

ARCSEC = math.pi / 180 / 3600


def say(message: str) -> None:
    """A summary line: in the step log, and shown on the console by the runner."""
    from ..invoke.markers import SUMMARY_MARK

    print(f"{SUMMARY_MARK}{message}", flush=True)
    log.info(message)


def load_dataset(url: str | Location, columns: list[str]) -> xr.Dataset:
    """The visibility dataset a cab works on: a local MS read eagerly with just ``columns`` (the
    fastest path), any other dataset (Zarr or a delta, local or S3) opened by URL."""
    from ..vis.io import format_of, open_dataset

    loc = as_location(url)
    if format_of(loc) == "ms" and loc.is_local:
        from ..vis.ms import read_ms

        return read_ms(loc.path, columns=columns)
    return open_dataset(loc)


def write_zarr_atomic(ds: xr.Dataset, url: str | os.PathLike[str] | Location) -> str:
    """Write a small dataset as a Zarr store: aside first, then moved into place (local or S3)."""
    from ..vis import storage

    loc = as_location(url)
    if not loc.is_local:
        with storage.atomic_write(loc, fmt="zarr", overwrite=True) as commit:
            ds.to_zarr(commit.location.zarr_store(read_only=False), mode="w", consolidated=False, zarr_format=2)
        return commit.final_url
    path = Path(loc.path)
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
