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
    threads when running on one, otherwise 0 (ducc0: every core, as WSClean's default ``-j``).

    More than one thread grids faster but not reproducibly: ducc0's threads add into the grid in a
    varying order (images differ by ~4e-7 of the peak between runs), so a rerun or a resumed run
    is bit-identical only with one thread.
    """
    if nthreads > 0:
        return nthreads
    from ..science.streaming import worker_threads

    return worker_threads()


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


def dataset_format(url: str) -> str:
    """``ms`` or ``zarr`` from the name of ``url`` (a name with neither suffix is taken as an MS)."""
    from ..vis.io import format_of

    loc = as_location(url)
    return format_of(loc) if loc.name.lower().rstrip("/").endswith((".ms", ".zarr")) else "ms"


def is_staged(url: str) -> bool:
    """Whether a tool reading local MSs needs a copy of ``url`` (a remote MS or a Zarr dataset)."""
    return dataset_format(url) != "ms" or not as_location(url).is_local


def stage_ms(url: str, staging: Path, param: str = "ms") -> tuple[str, bool]:
    """A local MS standing for ``url`` (parameter ``param``): itself, a download of a remote MS
    into ``staging``, or a conversion of a Zarr dataset (local or remote). The flag says whether
    it is a copy."""
    from ..vis.convert import convert
    from ..vis.storage import MARKER

    loc = as_location(url)
    fmt = dataset_format(url)
    if fmt == "ms" and loc.is_local:
        if not (Path(loc.path) / "table.dat").exists():
            raise UsageError(f"Measurement Set {url} (parameter '{param}') does not exist.")
        return loc.path, False
    local = staging / f"{len(list(staging.iterdir())):03d}-{Path(loc.name).stem}.ms"
    if fmt == "ms":
        try:
            loc.download(local, folder=True)
        except FileNotFoundError:
            raise UsageError(f"Measurement Set {url} (parameter '{param}') does not exist.") from None
        if not (local / "table.dat").exists():
            raise UsageError(f"{url} (parameter '{param}') is not a Measurement Set (no table.dat).")
        (local / MARKER).unlink(missing_ok=True)  # the store's commit marker; a publish writes a new one
    else:
        convert(loc, str(local))
    return str(local), True


def publish_ms(local: str | os.PathLike[str], url: str) -> str:
    """Upload the local MS ``local`` to the remote ``url`` atomically, replacing what is there
    (readers see the old MS or the new one, never a mix); ``local`` is moved, not copied."""
    from ..vis.io import upload_ms

    return upload_ms(lambda dst: shutil.move(os.fspath(local), dst), url, overwrite=True)


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
