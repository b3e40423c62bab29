"""The atomic commit protocol of datasets on local disk, S3 or memory.

Every store a radioflow writer produces carries a completion marker, ``.radioflow-complete``
(JSON: ``version``, ``created``, ``writer``, ``format``), written LAST. On local disk the
whole dataset is written to a temporary sibling directory and renamed into place; on object
storage (S3, memory) there is no rename, so the data is written under the final prefix and the
marker published at the end. Readers refuse a store without the marker: a writer killed midway
leaves nothing that a reader accepts, and a rerun replaces the debris. The marker's ``version``
(a fresh uuid per commit) is what caches and delta overlays key on.

Every function takes a path, URL or :class:`~radioflow.vis.location.Location` (which carries
the storage options and credentials, see :mod:`radioflow.vis.location`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import UsageError
from ..processes import pause_point, remove_stale_siblings
from .location import Location, StorageOptions, as_location, s3_options

__all__ = ["MARKER", "Commit", "Location", "StorageOptions", "as_location", "atomic_write",
           "check_writable_destination", "du", "etags", "exists", "read_marker", "remove",
           "require_complete", "retract_marker", "s3_options", "update_marker", "version_id"]

Target = str | os.PathLike[str] | Location

MARKER = ".radioflow-complete"
def exists(url: Target, **storage_options: Any) -> bool:
    """True if anything (committed or not) exists at ``url``."""
    loc = as_location(url, **storage_options)
    try:
        return bool(loc.fs.exists(loc.path))
    except PermissionError as exc:
        raise UsageError(f"Access to {loc} was denied by the storage service: {exc}") from None


def read_marker(url: Target, **storage_options: Any) -> dict[str, Any] | None:
    """The completion marker of the dataset at ``url``, or None if it is absent."""
    loc = as_location(url, **storage_options)
    try:
        raw = loc.fs.cat_file(loc.join(MARKER).path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise UsageError(f"Access to {loc} was denied by the storage service: {exc}") from None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def require_complete(url: Target, **storage_options: Any) -> dict[str, Any]:
    """The marker of ``url``; a :class:`UsageError` if the dataset is absent or incomplete."""
    loc = as_location(url, **storage_options)
    marker = read_marker(loc)
    if marker is not None:
        return marker
    if exists(loc):
        raise UsageError(
            f"Dataset {loc} is incomplete: it has no completion marker ({MARKER}), so its writer "
            "was interrupted or is still running. Rerun the step that writes it (writing over an "
            "incomplete dataset is allowed without --overwrite)."
        )
    raise UsageError(f"Dataset {loc} does not exist.")


def version_id(url: Target, **storage_options: Any) -> str:
    """The commit version of ``url``: the marker's uuid, else a fingerprint of sizes and mtimes.

    The fallback covers datasets radioflow did not write (e.g. a Measurement Set from CASA).
    """
    loc = as_location(url, **storage_options)
    marker = read_marker(loc)
    if marker is not None:
        return str(marker["version"])
    if not loc.fs.exists(loc.path):
        raise UsageError(f"Dataset {loc} does not exist.")
    import hashlib

    digest = hashlib.sha1()
    for name, info in sorted(loc.fs.find(loc.path, detail=True).items()):
        if name.endswith("table.lock"):  # casacore rewrites lock files on every open
            continue
        stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
        digest.update(f"{name}:{info.get('size')}:{stamp}".encode())
    return "fp-" + digest.hexdigest()[:24]


def _marker_payload(fmt: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "version": uuid.uuid4().hex,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "writer": f"radioflow@{socket.gethostname()}:{os.getpid()}",
        "format": fmt,
        **dict(extra or {}),
    }


@dataclass
class Commit:
    """An open write: put the dataset at :attr:`location` (a temporary one on local disk);
    it is published at :attr:`final`."""

    final: Location
    location: Location
    fmt: str
    marker: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        """Where to write now."""
        return self.location.url

    @property
    def final_url(self) -> str:
        """Where the dataset is published."""
        return self.final.url

    @property
    def version(self) -> str | None:
        return None if self.marker is None else self.marker["version"]


def check_writable_destination(url: Target, overwrite: bool, storage_options: Mapping[str, Any] | None = None) -> None:
    """Raise a :class:`UsageError` if ``url`` holds a dataset that may not be replaced."""
    loc = as_location(url, **dict(storage_options or {}))
    marker = read_marker(loc)
    if marker is not None and not overwrite:
        raise UsageError(
            f"Output {loc} already exists; pass overwrite=True (--overwrite) to replace it."
        )
    if loc.is_local and os.path.exists(loc.path) and marker is None and not overwrite:
        if not os.path.isdir(loc.path) or any(True for _ in os.scandir(loc.path)):
            raise UsageError(f"Output {loc} already exists; pass overwrite=True (--overwrite) to replace it.")


def _record_manifest(loc: Location, payload: dict[str, Any]) -> None:
    """Pin the chunk manifest of a Zarr store in its marker ``payload`` (see integrity.py)."""
    if str(payload.get("format", "")).startswith("zarr"):
        from .integrity import write_manifest

        payload.update(write_manifest(loc))


def _remove_stale_siblings(target: Path) -> None:
    """Delete temporary siblings of ``target`` left by writers that died (kill -9, crash)."""
    remove_stale_siblings(target, ("tmp",))


@contextlib.contextmanager
def atomic_write(
    url: Target,
    *,
    fmt: str,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
    **storage_options: Any,
) -> Iterator[Commit]:
    """Context manager committing a dataset atomically at ``url``.

    Yields a :class:`Commit`; write the dataset at ``commit.location``. On success the marker is
    published (and, locally, the temporary directory renamed into place). On failure nothing
    readable is left behind. An incomplete dataset (no marker) may always be replaced.
    """
    loc = as_location(url, **storage_options)
    check_writable_destination(loc, overwrite)
    payload = _marker_payload(fmt, extra)
    if loc.is_local:
        target = Path(loc.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"Cannot create the folder for output {loc}: {exc.strerror}.") from None
        if not os.access(target.parent, os.W_OK):
            raise UsageError(f"Output folder {target.parent} is not writable (output {loc}).")
        _remove_stale_siblings(target)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        commit = Commit(final=loc, location=loc.with_name(tmp.name), fmt=fmt)
        try:
            tmp.mkdir()
            yield commit
            tmp.mkdir(exist_ok=True)
            _record_manifest(commit.location, payload)
            pause_point("commit")
            (tmp / MARKER).write_text(json.dumps(payload))
            old = None
            if target.exists() or target.is_symlink():
                old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        commit.marker = payload
        return
    fs = loc.fs
    if fs.exists(loc.path):
        # Retract the old marker first: from here on readers refuse the prefix.
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(loc.join(MARKER).path)
        fs.rm(loc.path, recursive=True)
    commit = Commit(final=loc, location=loc, fmt=fmt)
    yield commit
    _record_manifest(loc, payload)
    pause_point("commit")
    fs.pipe_file(loc.join(MARKER).path, json.dumps(payload).encode())
    commit.marker = payload


def update_marker(url: Target, *, extra: Mapping[str, Any] | None = None, **storage_options: Any) -> dict[str, Any]:
    """Publish a new version marker for an in-place update of ``url`` (e.g. a delta overlay)."""
    loc = as_location(url, **storage_options)
    old = read_marker(loc) or {}
    kept = {k: v for k, v in old.items() if k not in ("version", "created", "writer", "format")}
    payload = _marker_payload(old.get("format", "unknown"), {**kept, **dict(extra or {})})
    _record_manifest(loc, payload)
    loc.fs.pipe_file(loc.join(MARKER).path, json.dumps(payload).encode())
    return payload


def retract_marker(url: Target, **storage_options: Any) -> None:
    """Remove the marker of ``url`` (readers refuse it until :func:`update_marker`)."""
    loc = as_location(url, **storage_options)
    with contextlib.suppress(FileNotFoundError):
        loc.fs.rm_file(loc.join(MARKER).path)


def remove(url: Target, **storage_options: Any) -> None:
    """Delete the dataset at ``url`` (marker first)."""
    loc = as_location(url, **storage_options)
    if loc.fs.exists(loc.path):
        retract_marker(loc)
        loc.fs.rm(loc.path, recursive=True)


def du(url: Target, **storage_options: Any) -> int:
    """Total bytes stored under ``url``."""
    loc = as_location(url, **storage_options)
    return int(sum(info["size"] for info in loc.fs.find(loc.path, detail=True).values()))


def etags(url: Target, **storage_options: Any) -> dict[str, str]:
    """Object name -> ETag (S3) or size:mtime fingerprint (elsewhere), to detect modification."""
    loc = as_location(url, **storage_options)
    loc.fs.invalidate_cache()
    out = {}
    for name, info in loc.fs.find(loc.path, detail=True).items():
        out[name] = str(info.get("ETag") or f"{info.get('size')}:{info.get('mtime') or info.get('created')}")
    return out
