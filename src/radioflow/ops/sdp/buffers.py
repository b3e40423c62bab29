"""Buffer reservations realised as storage: a directory or an ``s3://`` prefix per reservation.

A reservation has a name, a size in bytes (the PB's ``buffer_size`` parameter or the workflow's
estimate) and a location under the buffer root (a local directory, a mounted PVC, or an
``s3://bucket/prefix``). On a file system, creating one refuses with a clear error when the file
system holding it has less free space than the reservation plus what every other live
reservation there still expects to write. An object store has no free space to check: the
bucket must be reachable and writable, and a small ``.reservation.json`` object records the
reservation on the store itself. Products stay after the PB ends; ``used`` measures what is
there now (the marker object excluded). S3 credentials come from the usual configuration and
environment (:mod:`radioflow.vis.location`) and are never written into a record or a message.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ...errors import RadioflowError
from ...resources import human
from ...vis.location import Location, is_remote

MARKER = ".reservation.json"


class BufferSpaceError(RadioflowError):
    """Not enough free space for a reservation, or its storage cannot be used."""


def default_root(workdir: str | Path) -> Path:
    """Where buffers live unless configured: ``<workdir>/radioflow-data/buffers``."""
    return Path(workdir, "radioflow-data", "buffers").absolute()


def normalise_root(root: str | Path) -> str:
    """The canonical form of a buffer root: an absolute path, or ``s3://bucket/prefix``."""
    if is_remote(str(root)):
        loc = Location.parse(str(root))
        if loc.protocol != "s3" or not loc.path:
            raise BufferSpaceError(f"buffer root '{root}': use a local directory or s3://BUCKET[/PREFIX].")
        return loc.url
    return str(Path(root).absolute())


def location(root: str | Path, name: str) -> str:
    """The storage location of reservation ``name`` under ``root``."""
    if is_remote(str(root)):
        return Location.parse(str(root)).join(name).url
    return str(Path(root, name))


def used_bytes(path: str | Path) -> int:
    """Bytes stored under ``path`` (a directory, file or ``s3://`` prefix; 0 when absent)."""
    if is_remote(str(path)):
        return _s3_used(Location.parse(str(path)))
    p = Path(path)
    if not p.exists():
        return 0
    if p.is_file():
        return p.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(p):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                continue
    return total


def _s3_used(loc: Location) -> int:
    try:
        found = loc.fs.find(loc.path, detail=True)
    except FileNotFoundError:
        return 0
    return sum(int(info.get("size") or 0) for key, info in found.items() if not key.endswith("/" + MARKER))


def _free_local(path: Path) -> tuple[int, int, Path]:
    """(device id, free bytes, existing ancestor) of the file system that will hold ``path``."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.stat().st_dev, shutil.disk_usage(probe).free, probe


def _check_s3(root: str, pb_id: str) -> None:
    """Refuse clearly when the bucket of an ``s3://`` buffer root cannot be reached or written."""
    loc = Location.parse(root)
    probe = loc.join(f".probe-{pb_id}-{time.time_ns()}")
    try:
        loc.fs.pipe_file(probe.path, b"ok")
        loc.fs.rm_file(probe.path)
    except Exception as exc:   # botocore/aiohttp errors vary; the message names no secret
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise BufferSpaceError(
            f"cannot create buffer reservations for {pb_id}: the buffer root {loc.url} cannot be written "
            f"({exc.__class__.__name__}: {why}); check the bucket, storage.s3.endpoint_url and the S3 "
            "credentials in the environment.") from None


def stage_dir(workdir: str | Path, pb_id: str) -> Path:
    """Local staging copy of a PB's ``s3://`` buffers while its workflow runs."""
    return Path(workdir, ".radioflow", "sdp", "stage", pb_id).absolute()


def plan(pb_id: str, requests: list[tuple[str, int]], root: str | Path,
         others: list[dict[str, Any]], *, stage: str | Path | None = None) -> list[dict[str, Any]]:
    """Check storage for ``requests``; return their reservation records (nothing created yet).

    ``others`` are the existing reservations: on a file system the space they still expect to
    fill (their size minus what they hold) counts against its free space. With an ``s3://``
    root, ``stage`` is the local directory the workflow writes before the upload: its file
    system must hold the reservations too.
    """
    root_s = str(root)
    out: list[dict[str, Any]] = [{"name": name, "pb_id": pb_id, "size": int(size), "location": location(root_s, name),
                                  "created": time.time(), "active": True} for name, size in requests]
    if is_remote(root_s):
        _check_s3(root_s, pb_id)
        if stage is not None:
            Path(stage).mkdir(parents=True, exist_ok=True)
            _check_free(pb_id, [{**r, "location": str(Path(stage, r["name"]))} for r in out], others)
        return out
    Path(root_s).mkdir(parents=True, exist_ok=True)
    _check_free(pb_id, out, others)
    return out


def _check_free(pb_id: str, recs: list[dict[str, Any]], others: list[dict[str, Any]]) -> None:
    """Refuse when a file system holding some of ``recs`` lacks the space they and the other
    live reservations there still need."""
    by_device: dict[int, tuple[int, Path, list[dict[str, Any]]]] = {}
    for rec in recs:
        dev, free, where = _free_local(Path(rec["location"]))
        by_device.setdefault(dev, (free, where, []))[2].append(rec)
    for dev, (free, where, group) in by_device.items():
        pending = sum(max(0, int(o["size"]) - used_bytes(o["location"])) for o in others
                      if o.get("pb_id") != pb_id and o.get("active", True) and not is_remote(o["location"])
                      and _free_local(Path(o["location"]))[0] == dev)
        need = sum(r["size"] for r in group)
        if need + pending > free:
            raise BufferSpaceError(
                f"cannot create buffer reservations {', '.join(r['name'] for r in group)} for {pb_id}: they need "
                f"{human(need)} but {where} has {human(free)} free ({human(pending)} promised to other "
                "reservations); free space, give a smaller buffer_size parameter or another buffer root.")


def materialise(records: list[dict[str, Any]]) -> None:
    """Create the storage of reservations recorded in the database (a directory, or the
    reservation's marker object under its ``s3://`` prefix)."""
    for r in records:
        if is_remote(r["location"]):
            loc = Location.parse(r["location"])
            info = {k: r[k] for k in ("name", "pb_id", "size", "created")}
            loc.fs.pipe_file(loc.join(MARKER).path, json.dumps(info).encode())
        else:
            Path(r["location"]).mkdir(parents=True, exist_ok=True)
