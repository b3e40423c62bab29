"""Local-disk column cache for datasets on slow storage (S3).

Every Zarr object (chunk or metadata document) a step reads from a remote store is kept on
local disk under ``<cache.dir>/<sha1(url)>/<version>/<key>``, so the columns a step touched
are served locally to later steps. The key includes the store's commit version (the uuid of
its completion marker): when the source is rewritten its version changes, the old entries
are dropped and nothing stale is ever served. The cache is bounded (``cache.max_bytes``,
default 20 GB) and evicts least-recently-used objects first (hits refresh the file mtime).

Config: ``cache.dir`` (default ``~/.cache/radioflow``), ``cache.max_bytes`` (int or "20GB").
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

from zarr.storage import WrapperStore

from ..errors import UsageError
from . import storage
from .location import Location, as_location

DEFAULT_MAX_BYTES = 20 * 10**9
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(value: Any) -> int:
    """``"20GB"``, ``"512MiB"`` or a number -> bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().upper().replace(" ", "")
    num = text.rstrip("KMGTIB")
    unit = text[len(num):]
    try:
        return int(float(num) * _UNITS[unit])
    except (ValueError, KeyError):
        raise UsageError(f"Cache size '{value}' is not a size like 20GB or 512MiB (config cache.max_bytes).") from None


def _config() -> Mapping[str, Any]:
    from ..config import load_config

    return load_config().get("cache") or {}


class ColumnCache:
    """A bounded LRU cache directory for remote dataset objects."""

    def __init__(self, root: str | Path | None = None, max_bytes: int | str | None = None) -> None:
        cfg = _config() if root is None or max_bytes is None else {}
        root = root or cfg.get("dir") or Path.home() / ".cache" / "radioflow"
        self.root = Path(root).expanduser().absolute()
        self.max_bytes = parse_size(max_bytes if max_bytes is not None else cfg.get("max_bytes", DEFAULT_MAX_BYTES))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"Cannot create the cache folder {self.root} (config cache.dir): {exc.strerror}.") from None
        self._added = 0

    def url_dir(self, url: str | Location) -> Path:
        """The folder of every cached version of ``url``."""
        return self.root / hashlib.sha1(as_location(url).url.encode()).hexdigest()[:20]

    def entry_dir(self, url: str | Location, version: str) -> Path:
        """The folder for ``url`` at ``version``; older versions of ``url`` are dropped."""
        base = self.url_dir(url)
        if base.exists():
            for old in base.iterdir():
                if old.name != version:
                    shutil.rmtree(old, ignore_errors=True)
        path = base / version
        path.mkdir(parents=True, exist_ok=True)
        return path

    def store(self, url: str | Location, **storage_options: Any) -> "CachingStore":
        """A read-only zarr store for ``url`` that serves objects through this cache."""
        loc = as_location(url, **storage_options)
        version = storage.version_id(loc)
        inner = loc.zarr_store(read_only=True)
        self.evict()
        return CachingStore(inner, str(self.entry_dir(loc, version)), str(self.root), self.max_bytes)

    @staticmethod
    def touch(path: Path) -> None:
        os.utime(path)

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def evict(self, max_bytes: int | None = None) -> int:
        """Delete least-recently-used files until the cache fits; returns bytes freed."""
        return evict(self.root, self.max_bytes if max_bytes is None else max_bytes)


def evict(root: str | Path, max_bytes: int) -> int:
    """Delete the oldest (by mtime) files under ``root`` until it holds at most ``max_bytes``."""
    files = []
    total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, path))
            total += st.st_size
    freed = 0
    if total <= max_bytes:
        return 0
    for _, size, path in sorted(files):
        if total - freed <= max_bytes:
            break
        try:
            os.unlink(path)
            freed += size
        except FileNotFoundError:
            pass
    return freed


class CachingStore(WrapperStore):
    """Zarr store wrapper: whole-object reads come from the local cache folder when present.

    ``hits``/``misses`` count objects served locally / fetched from the source.
    """

    def __init__(self, store: Any, cache_dir: str, root: str, max_bytes: int) -> None:
        super().__init__(store)
        self.cache_dir = cache_dir
        self.cache_root = root
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._added = 0

    def _with_store(self, store: Any) -> "CachingStore":
        return type(self)(store, self.cache_dir, self.cache_root, self.max_bytes)

    def __getstate__(self) -> dict[str, Any]:
        return {"_store": self._store, "cache_dir": self.cache_dir, "cache_root": self.cache_root,
                "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, hits=0, misses=0, _added=0)

    async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
        from zarr.core.buffer import default_buffer_prototype

        if byte_range is not None:
            return await self._store.get(key, prototype, byte_range)
        prototype = prototype or default_buffer_prototype()
        path = os.path.join(self.cache_dir, key)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            os.utime(path)
            self.hits += 1
            return prototype.buffer.from_bytes(data)
        except FileNotFoundError:
            pass
        buf = await self._store.get(key, prototype, None)
        if buf is None:
            return None
        self.misses += 1
        data = buf.to_bytes()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.part"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        self._added += len(data)
        if self._added > self.max_bytes // 10:
            self._added = 0
            evict(self.cache_root, self.max_bytes)
        return buf
