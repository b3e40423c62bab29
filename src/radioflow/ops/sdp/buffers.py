"""Buffer reservations realised as storage: a directory per reservation under the buffer root.

A reservation has a name, a size in bytes (the PB's ``buffer_size`` parameter or the workflow's
estimate) and a location. Creating one refuses with a clear error when the file system holding
the root has less free space than the reservation plus every other live reservation still
expects to write. Products stay after the PB ends; ``used`` measures what is there now.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from ...errors import RadioflowError
from ...resources import human


class BufferSpaceError(RadioflowError):
    """Not enough free space for a reservation."""


def default_root(workdir: str | Path) -> Path:
    """Where buffers live unless configured: ``<workdir>/radioflow-data/buffers``."""
    return Path(workdir, "radioflow-data", "buffers").absolute()


def location(root: str | Path, name: str) -> str:
    """The storage location of reservation ``name``."""
    return str(Path(root, name))


def used_bytes(path: str | Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
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


def plan(pb_id: str, requests: list[tuple[str, int]], root: str | Path,
         others: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check free space for ``requests``; return their reservation records (nothing created yet).

    ``others`` are the existing reservations: the space they still expect to fill counts
    against the free space.
    """
    root_p = Path(root)
    root_p.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root_p).free
    pending = sum(max(0, int(o["size"]) - used_bytes(o["location"])) for o in others
                  if o.get("pb_id") != pb_id and o.get("active", True))
    need = sum(size for _, size in requests)
    if need + pending > free:
        raise BufferSpaceError(
            f"cannot create buffer reservations {', '.join(n for n, _ in requests)} for {pb_id}: they need "
            f"{human(need)} but {root_p} has {human(free)} free ({human(pending)} promised to other "
            "reservations); free space, give a smaller buffer_size parameter or another buffer root.")
    out = []
    for name, size in requests:
        loc = location(root_p, name)
        out.append({"name": name, "pb_id": pb_id, "size": int(size), "location": loc, "created": time.time(),
                    "active": True})
    return out


def materialise(records: list[dict[str, Any]]) -> None:
    """Create the storage of reservations recorded in the database."""
    for r in records:
        Path(r["location"]).mkdir(parents=True, exist_ok=True)


