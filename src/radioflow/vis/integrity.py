"""Chunk manifests of committed Zarr stores: detect missing or damaged chunks before reading.

Zarr reads a missing chunk as the fill value (zeros, "not flagged"), so a store that lost an
object would be silently wrong. At commit a writer records, beside the completion marker, the
manifest ``.radioflow-manifest`` (JSON ``{key: [size, checksum]}`` for every object of the
store; ``crc32:`` of the content where reading it back is cheap, the server's ``etag:`` on
object storage). The marker holds the manifest's digest. Opening a store compares the listing
with the manifest (existence and size: one listing, no data read); :func:`verify` also checks
every checksum.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from ..errors import UsageError
from .location import Location

MANIFEST = ".radioflow-manifest"
#: Objects the manifest does not cover: the commit files themselves.
_SKIP = (".radioflow-complete", MANIFEST)
#: Object stores already checked in this process: (url, version).
_CHECKED: set[tuple[str, str]] = set()


def _listing(loc: Location) -> dict[str, dict[str, Any]]:
    """Relative key -> fsspec info of every object below ``loc``."""
    fs = loc.fs
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache(loc.path)
    root = fs._strip_protocol(loc.path).rstrip("/") + "/"
    out = {}
    for name, info in fs.find(loc.path, detail=True).items():
        key = fs._strip_protocol(name)[len(root):] if fs._strip_protocol(name).startswith(root) else name
        if key.rsplit("/", 1)[-1] in _SKIP:
            continue
        out[key] = info
    return out


def _checksum(loc: Location, key: str, info: dict[str, Any]) -> str:
    etag = info.get("ETag") or info.get("etag")
    if loc.protocol == "s3" and etag:
        return "etag:" + str(etag).strip('"')
    return f"crc32:{zlib.crc32(loc.fs.cat_file(loc.join(key).path)) & 0xFFFFFFFF:08x}"


def build_manifest(loc: Location) -> dict[str, list[Any]]:
    """The manifest of the objects now stored below ``loc``."""
    return {key: [int(info.get("size") or 0), _checksum(loc, key, info)]
            for key, info in sorted(_listing(loc).items())}


def write_manifest(loc: Location) -> dict[str, Any]:
    """Record the manifest of ``loc``; returns the marker fields that pin it."""
    raw = json.dumps(build_manifest(loc), separators=(",", ":")).encode()
    loc.fs.pipe_file(loc.join(MANIFEST).path, raw)
    return {"manifest": {"digest": hashlib.blake2b(raw, digest_size=16).hexdigest(), "bytes": len(raw)}}


def read_manifest(loc: Location, marker: dict[str, Any]) -> dict[str, list[Any]] | None:
    """The manifest the marker pins, None for stores committed without one; a
    :class:`UsageError` if the manifest itself is missing or altered."""
    pin = marker.get("manifest")
    if not isinstance(pin, dict):
        return None
    try:
        raw = loc.fs.cat_file(loc.join(MANIFEST).path)
    except FileNotFoundError:
        raise UsageError(f"Dataset {loc} is damaged: its chunk manifest ({MANIFEST}) is missing.") from None
    if hashlib.blake2b(raw, digest_size=16).hexdigest() != pin.get("digest"):
        raise UsageError(f"Dataset {loc} is damaged: its chunk manifest ({MANIFEST}) does not match its "
                         "completion marker.")
    return json.loads(raw)


def describe(key: str) -> str:
    """``FIELD0_SPW0/FLAG/c/0/1/0/0`` -> ``variable FLAG (group FIELD0_SPW0), chunk c/0/1/0/0``."""
    parts = key.split("/")
    if "c" in parts:
        i = parts.index("c")
        where = "/".join(parts[:i])
        group, _, var = where.rpartition("/")
        return f"variable {var}" + (f" (group {group})" if group else "") + f", chunk {'/'.join(parts[i:])}"
    return f"object {key}"


def problems(loc: Location, marker: dict[str, Any], *, checksums: bool = False) -> dict[str, list[str]]:
    """Problem kind (``missing``, ``wrong size``, ``wrong checksum``) -> affected keys."""
    manifest = read_manifest(loc, marker)
    found: dict[str, list[str]] = {}
    if manifest is None:
        return found
    listing = _listing(loc)
    for key, (size, digest) in manifest.items():
        info = listing.get(key)
        if info is None:
            found.setdefault("missing", []).append(key)
        elif int(info.get("size") or 0) != size:
            found.setdefault("wrong size", []).append(key)
        elif checksums and _checksum(loc, key, info) != digest:
            found.setdefault("wrong checksum", []).append(key)
    return found


def message(loc: Location, kind: str, keys: list[str]) -> str:
    """One paragraph about the ``keys`` of ``loc`` with problem ``kind``."""
    more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
    what = {"missing": "is missing", "wrong size": "has the wrong size",
            "wrong checksum": "has the wrong content checksum"}[kind]
    return (f"Dataset {loc} is damaged: {describe(keys[0])} {what}{more}. Reading it would give "
            "wrong values; restore the dataset from its source or rewrite it.")


def check_store(loc: Location, marker: dict[str, Any]) -> None:
    """Refuse a store whose chunks are missing or have the wrong size (object stores: once per
    version and process, as listing costs requests; local disk: at every open)."""
    stamp = (loc.url, str(marker.get("version")))
    if stamp in _CHECKED and not loc.is_local:
        return
    found = problems(loc, marker)
    # metadata documents are read through the consolidated root (damage there fails loudly);
    # an interrupted delta update rewrites them, harmlessly for readers of the committed view
    for kind, keys in found.items():
        keys = [k for k in keys if not k.endswith("zarr.json")]
        if keys:
            raise UsageError(message(loc, kind, keys))
    _CHECKED.add(stamp)
