"""Small helpers shared by the cab entry points.

Cabs name their files by path or URL (a recipe's ``workdir`` may be ``s3://…``) while the
science code writes and reads local files only. :class:`Files` bridges the two through
:class:`~radioflow.vis.location.Location`: never :mod:`pathlib` on a URL, which would turn
``s3://b/k`` into a local folder ``s3:/b/k``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import xarray as xr

from ..errors import UsageError
from ..processes import remove_stale_siblings
from ..vis.location import Location, as_location, scheme_of

Target = str | os.PathLike[str] | Location

log = logging.getLogger("radioflow.cabs")

ARCSEC = math.pi / 180 / 3600


def say(message: str) -> None:
    """A summary line: in the step log, and shown on the console by the runner."""
    from ..invoke.markers import SUMMARY_MARK

    print(f"{SUMMARY_MARK}{message}", flush=True)
    log.info(message)


def gridding_threads(nthreads: int) -> int:
    """Threads for ducc0: ``nthreads`` if positive, else all this step may use: the Dask worker's
    threads when running on one, otherwise 0 (ducc0: every core, as WSClean's default ``-j``)."""
    if nthreads > 0:
        return nthreads
    from ..science.streaming import _worker_threads

    return _worker_threads()


def load_dataset(url: str | Location, columns: list[str] | None,
                 extras: tuple[str, ...] = ("FLAG", "WEIGHT", "UVW")) -> xr.Dataset:
    """The visibility dataset a cab works on: a local MS read eagerly with just ``columns`` (``None``:
    all its data columns) and ``extras`` of FLAG / WEIGHT / UVW (the fastest path), any other
    dataset (Zarr or a delta, local or S3) opened by URL (all its variables, lazily)."""
    from ..vis.io import format_of, ms_data_columns, open_dataset

    loc = as_location(url)
    if loc.is_local:
        try:
            local_ms = format_of(loc) == "ms"
        except UsageError:  # a table named without .ms: casacore judges it
            local_ms = True
        if local_ms:
            from ..vis.ms import read_ms

            return read_ms(loc.path, columns=ms_data_columns(loc.path) if columns is None else columns,
                           extras=extras)
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
    remove_stale_siblings(path, ("tmp", "old"))     # left by a writer that was killed (then --resume)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.to_zarr(tmp, mode="w", consolidated=False, zarr_format=2)
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return str(path)


class Files:
    """Local stand-ins for the files a cab reads and writes by path or URL.

    A local file is used where it is (an output's folder is created). A remote input is
    downloaded into a staging folder; a remote output is written into one and uploaded (one
    object each, so readers see whole files) when the :func:`cab_files` block ends without error.
    """

    def __init__(self, staging: Path) -> None:
        self._staging = staging
        self._outputs: dict[Location, Path] = {}
        self._folders = 0

    @staticmethod
    def _local(url: Target, loc: Location) -> str:
        """A local target as given (relative paths stay relative), ``file://`` URLs as paths."""
        return loc.path if isinstance(url, Location) or scheme_of(url) else os.fspath(url)

    def _folder(self) -> Path:
        """A fresh staging folder (one per remote folder written, one per input read)."""
        self._folders += 1
        folder = self._staging / str(self._folders)
        folder.mkdir()
        return folder

    def input(self, url: Target) -> str:
        """A local path holding the file ``url`` (downloaded if remote)."""
        loc = as_location(url)
        if loc.is_local:
            return self._local(url, loc)
        local = self._folder() / loc.name
        try:
            loc.download(local, folder=False)
        except FileNotFoundError:
            raise UsageError(f"Input {loc} does not exist.") from None
        return str(local)

    def output(self, url: Target) -> str:
        """The local path to write the file ``url`` at; files written beside it in the same
        staging folder (e.g. a PNG preview) go to the same remote folder."""
        loc = as_location(url)
        if loc.is_local:
            Path(loc.path).parent.mkdir(parents=True, exist_ok=True)
            return self._local(url, loc)
        folder = self._outputs.get(loc.parent)
        if folder is None:
            folder = self._outputs[loc.parent] = self._folder()
        return str(folder / loc.name)

    def url_of(self, local: str | os.PathLike[str]) -> str:
        """The URL a path returned by :meth:`output` stands for (a local path: itself)."""
        path = Path(local)
        for parent, folder in self._outputs.items():
            if path.parent == folder:
                return parent.join(path.name).url
        return os.fspath(local)

    def upload(self) -> None:
        """Publish every staged output (temporaries of atomic writers, ``.*``, stay behind)."""
        for parent, folder in self._outputs.items():
            for path in sorted(folder.iterdir()):
                if not path.name.startswith("."):
                    parent.join(path.name).upload(path)


@contextlib.contextmanager
def cab_files() -> Iterator[Files]:
    """A :class:`Files` whose remote outputs are uploaded when the block succeeds."""
    with tempfile.TemporaryDirectory(prefix="radioflow-cab-") as tmp:
        files = Files(Path(tmp))
        yield files
        files.upload()
