"""The atomic commit protocol of datasets on local disk, S3 or memory.

Every store a radioflow writer produces carries a completion marker, ``.radioflow-complete``
(JSON: ``version``, ``created``, ``writer``, ``format``), written LAST. On local disk the
whole dataset is written to a temporary sibling directory and renamed into place; on object
storage (S3, memory) there is no rename, so the data is written under the final prefix and the
marker published at the end. Readers refuse a store without the marker: a writer killed midway
leaves nothing that a reader accepts, and a rerun replaces the debris. Replacing a complete
dataset keeps it readable until the new one is complete (written and committed aside, then
swapped); :func:`recover` finishes a swap a killed writer left half done and sweeps the
``.NAME.tmp-*`` / ``.NAME.old-*`` siblings of dead writers. The marker's ``version``
(a fresh uuid per commit) is what caches and delta overlays key on.

Every function takes a path, URL or :class:`~radioflow.vis.location.Location` (which carries
the storage options and credentials, see :mod:`radioflow.vis.location`).
"""
from __future__ import annotations

import contextlib
import hashlib
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
from ..processes import pause_point, pid_alive
from .location import Location, StorageOptions, as_location, s3_options

__all__ = ["MARKER", "Commit", "Location", "StorageOptions", "as_location", "atomic_write",
           "check_writable_destination", "du", "etags", "exists", "read_marker", "remove",
           "require_complete", "retract_marker", "s3_options", "update_marker", "version_id"]

Target = str | os.PathLike[str] | Location

MARKER = ".radioflow-complete"
#: This host in the names of object-store siblings (pids are only comparable on one host).
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()

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
    recover(loc)
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
        recover(loc)
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
                old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.replace(target, old)
            pause_point("swap")
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        commit.marker = payload
        return
    fs = loc.fs
    recover(loc)
    if read_marker(loc) is None:
        # nothing complete to keep: write in place, the marker last
        if fs.exists(loc.path):
            fs.rm(loc.path, recursive=True)
        commit = Commit(final=loc, location=loc, fmt=fmt)
        yield commit
        _record_manifest(loc, payload)
        pause_point("commit")
        fs.pipe_file(loc.join(MARKER).path, json.dumps(payload).encode())
        commit.marker = payload
        return
    # Replace a complete dataset: write the new one aside and commit it there, so that the old
    # one stays readable until the new one is complete; then swap by server-side copy.
    aside = loc.with_name(f".{loc.name}.tmp-{os.getpid()}-{_HOST}-{uuid.uuid4().hex[:8]}")
    commit = Commit(final=loc, location=aside, fmt=fmt)
    try:
        yield commit
        _record_manifest(aside, payload)
        pause_point("commit")
        fs.pipe_file(aside.join(MARKER).path, json.dumps(payload).encode())
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(aside.path, recursive=True)
        raise
    _swap_remote(aside, loc)
    commit.marker = read_marker(loc)


def _swap_remote(aside: Location, final: Location) -> None:
    """Publish the complete dataset ``aside`` at ``final`` (marker last), then drop ``aside``."""
    fs = final.fs
    retract_marker(final)
    pause_point("swap")
    if fs.exists(final.path):
        fs.rm(final.path, recursive=True)
    keys = [k for k in fs.find(aside.path) if not k.endswith("/" + MARKER)]
    root = fs._strip_protocol(aside.path).rstrip("/") + "/"
    for key in keys:
        fs.copy(key, final.join(fs._strip_protocol(key)[len(root):]).path)
    payload = read_marker(aside) or {}
    _record_manifest(final, payload)
    fs.pipe_file(final.join(MARKER).path, json.dumps(payload).encode())
    fs.rm(aside.path, recursive=True)


def _writer_gone(name: str, prefix: str) -> bool:
    """Whether the writer named in sibling ``name`` (``<prefix><pid>[-<host>]-...``) is dead
    (only a writer on this host can be checked; others count as alive)."""
    parts = name[len(prefix):].split("-")
    if not parts[0].isdigit():
        return True
    if len(parts) >= 3 and parts[1] != _HOST:
        return False
    return not pid_alive(int(parts[0]))


def recover(url: Target, **storage_options: Any) -> None:
    """Finish or undo the replace of ``url`` a killed writer left half done, and sweep its debris.

    A complete new version aside (``.NAME.tmp-*`` with a marker) whose writer died is published
    when ``url`` has no complete dataset; a local ``.NAME.old-*`` is moved back when there is
    nothing at all at ``url``; every other sibling of a dead writer is deleted."""
    loc = as_location(url, **storage_options)
    fs = loc.fs
    parent = loc.parent
    try:
        names = [fs._strip_protocol(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(parent.path, detail=False)]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    tmp_prefix, old_prefix = f".{loc.name}.tmp-", f".{loc.name}.old-"
    stale = [n for n in names if (n.startswith(tmp_prefix) and _writer_gone(n, tmp_prefix))
             or (n.startswith(old_prefix) and _writer_gone(n, old_prefix))]
    if not stale:
        return
    complete = read_marker(loc) is not None
    for name in sorted(stale, key=lambda n: not n.startswith(tmp_prefix)):
        sib = parent.join(name)
        if not complete and name.startswith(tmp_prefix) and read_marker(sib) is not None:
            if loc.is_local:
                if os.path.lexists(loc.path):
                    shutil.rmtree(loc.path, ignore_errors=True)
                os.replace(sib.path, loc.path)
            else:
                _swap_remote(sib, loc)
            complete = True
        elif loc.is_local and not os.path.lexists(loc.path) and name.startswith(old_prefix):
            os.replace(sib.path, loc.path)
            complete = read_marker(loc) is not None
        elif loc.is_local:
            shutil.rmtree(sib.path, ignore_errors=True) if os.path.isdir(sib.path) else os.unlink(sib.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(sib.path, recursive=True)


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
