"""Dataset URLs on local disk, S3 or memory, and the atomic commit protocol.

Every store a radioflow writer produces carries a completion marker, ``.radioflow-complete``
(JSON: ``version``, ``created``, ``writer``, ``format``), written LAST. On local disk the
whole dataset is written to a temporary sibling directory and renamed into place; on object
storage (S3, memory) there is no rename, so the data is written under the final prefix and the
marker published at the end. Readers refuse a store without the marker: a writer killed midway
leaves nothing that a reader accepts, and a rerun replaces the debris. The marker's ``version``
(a fresh uuid per commit) is what caches and delta overlays key on.

S3 settings come from the radioflow configuration (``storage.s3.endpoint_url``, ``region``,
``access_key_env`` / ``secret_key_env``: the *names* of environment variables holding the
keys) or the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``). Credentials are never
printed: :class:`StorageOptions` redacts them in its ``repr``.
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

import fsspec

from ..errors import UsageError
from ..processes import remove_stale_siblings

MARKER = ".radioflow-complete"
_SECRET_KEYS = {"key", "secret", "token", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
_OBJECT_PROTOCOLS = {"s3", "memory"}


class StorageOptions(dict):
    """fsspec storage options whose ``repr``/``str`` never shows credentials."""

    def __repr__(self) -> str:
        shown = {k: ("***" if k in _SECRET_KEYS else v) for k, v in self.items()}
        return f"StorageOptions({shown!r})"

    __str__ = __repr__


def split_protocol(url: str) -> tuple[str, str]:
    """``("s3", "bucket/key")`` for ``s3://bucket/key``; ``("file", abs path)`` for a plain path."""
    url = str(url)
    if "://" in url:
        proto, rest = url.split("://", 1)
        proto = proto.lower()
        if proto in ("file", "local"):
            return "file", str(Path(rest).expanduser().absolute())
        if proto in ("s3", "s3a"):
            return "s3", rest.strip("/")
        if proto == "memory":
            return "memory", "/" + rest.strip("/")
        raise UsageError(
            f"Unsupported storage URL '{url}': radioflow reads and writes plain paths, file://, "
            "s3:// and memory:// URLs."
        )
    return "file", str(Path(url).expanduser().absolute())


def is_local(url: str) -> bool:
    """True for plain paths and ``file://`` URLs."""
    return split_protocol(url)[0] == "file"


def normalise_url(url: str) -> str:
    """Canonical form of ``url`` (absolute local path, ``s3://bucket/key``, ``memory:///x``)."""
    proto, path = split_protocol(url)
    if proto == "file":
        return path
    if proto == "memory":
        return "memory://" + path
    return f"s3://{path}"


def join(url: str, *parts: str) -> str:
    """Append path components to a URL or path."""
    base = str(url).rstrip("/")
    return "/".join([base, *[p.strip("/") for p in parts if p]])


def s3_options(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> StorageOptions:
    """s3fs options from the radioflow config (``storage.s3``) and the AWS environment."""
    environ = os.environ if environ is None else environ
    if config is None:
        from ..config import load_config

        config = load_config()
    s3 = dict(((config.get("storage") or {}).get("s3") or {}))
    opts = StorageOptions()
    endpoint = s3.get("endpoint_url") or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    region = s3.get("region") or environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION")
    key_env = s3.get("access_key_env") or "AWS_ACCESS_KEY_ID"
    secret_env = s3.get("secret_key_env") or "AWS_SECRET_ACCESS_KEY"
    if key_env not in environ and s3.get("access_key_env"):
        raise UsageError(
            f"Configuration key storage.s3.access_key_env names the environment variable "
            f"'{key_env}', which is not set."
        )
    if environ.get(key_env) and environ.get(secret_env):
        opts["key"] = environ[key_env]
        opts["secret"] = environ[secret_env]
    if environ.get("AWS_SESSION_TOKEN"):
        opts["token"] = environ["AWS_SESSION_TOKEN"]
    client_kwargs: dict[str, Any] = {}
    if endpoint:
        opts["endpoint_url"] = endpoint
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        opts["client_kwargs"] = client_kwargs
    return opts


def storage_options_for(url: str, overrides: Mapping[str, Any] | None = None) -> StorageOptions:
    """Options for the filesystem of ``url``: S3 settings for s3 URLs, none otherwise."""
    proto = split_protocol(url)[0]
    opts = s3_options() if proto == "s3" else StorageOptions()
    opts.update(overrides or {})
    return opts


def filesystem(url: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` and the path of ``url`` on it."""
    proto, path = split_protocol(url)
    opts = storage_options_for(url, storage_options)
    if proto == "s3":
        opts.setdefault("default_block_size", 32 * 2**20)
        opts.setdefault("use_listings_cache", False)
    return fsspec.filesystem(proto, **opts), path


def zarr_store(url: str, *, read_only: bool, **storage_options: Any):
    """A zarr v3 store for ``url``: ``LocalStore`` on disk, ``FsspecStore`` elsewhere."""
    import zarr.storage

    proto, path = split_protocol(url)
    if proto == "file":
        return zarr.storage.LocalStore(path, read_only=read_only)
    if proto == "s3":
        opts = storage_options_for(url, storage_options)
        opts.setdefault("use_listings_cache", False)
        fs = fsspec.filesystem("s3", asynchronous=True, **opts)
    else:
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

        fs = AsyncFileSystemWrapper(fsspec.filesystem(proto), asynchronous=True)
    return zarr.storage.FsspecStore(fs, path=path, read_only=read_only)


def exists(url: str, **storage_options: Any) -> bool:
    """True if anything (committed or not) exists at ``url``."""
    fs, path = filesystem(url, **storage_options)
    try:
        return bool(fs.exists(path))
    except PermissionError as exc:
        raise UsageError(f"Access to {url} was denied by the storage service: {exc}") from None


def read_marker(url: str, **storage_options: Any) -> dict[str, Any] | None:
    """The completion marker of the dataset at ``url``, or None if it is absent."""
    fs, path = filesystem(url, **storage_options)
    try:
        raw = fs.cat_file(f"{path}/{MARKER}")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise UsageError(f"Access to {url} was denied by the storage service: {exc}") from None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def require_complete(url: str, **storage_options: Any) -> dict[str, Any]:
    """The marker of ``url``; a :class:`UsageError` if the dataset is absent or incomplete."""
    marker = read_marker(url, **storage_options)
    if marker is not None:
        return marker
    if exists(url, **storage_options):
        raise UsageError(
            f"Dataset {url} is incomplete: it has no completion marker ({MARKER}), so its writer "
            "was interrupted or is still running. Rerun the step that writes it (writing over an "
            "incomplete dataset is allowed without --overwrite)."
        )
    raise UsageError(f"Dataset {url} does not exist.")


def version_id(url: str, **storage_options: Any) -> str:
    """The commit version of ``url``: the marker's uuid, else a fingerprint of sizes and mtimes.

    The fallback covers datasets radioflow did not write (e.g. a Measurement Set from CASA).
    """
    marker = read_marker(url, **storage_options)
    if marker is not None:
        return str(marker["version"])
    fs, path = filesystem(url, **storage_options)
    if not fs.exists(path):
        raise UsageError(f"Dataset {url} does not exist.")
    import hashlib

    digest = hashlib.sha1()
    for name, info in sorted(fs.find(path, detail=True).items()):
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
    """An open write: put the dataset at :attr:`url` (a temporary location on local disk)."""

    final_url: str
    url: str
    fmt: str
    marker: dict[str, Any] | None = None

    @property
    def version(self) -> str | None:
        return None if self.marker is None else self.marker["version"]


def check_writable_destination(url: str, overwrite: bool, storage_options: Mapping[str, Any] | None = None) -> None:
    """Raise a :class:`UsageError` if ``url`` holds a dataset that may not be replaced."""
    storage_options = storage_options or {}
    marker = read_marker(url, **storage_options)
    if marker is not None and not overwrite:
        raise UsageError(
            f"Output {url} already exists; pass overwrite=True (--overwrite) to replace it."
        )
    proto, path = split_protocol(url)
    if proto == "file" and os.path.exists(path) and marker is None and not overwrite:
        if not os.path.isdir(path) or any(True for _ in os.scandir(path)):
            raise UsageError(f"Output {url} already exists; pass overwrite=True (--overwrite) to replace it.")


def _remove_stale_siblings(target: Path) -> None:
    """Delete temporary siblings of ``target`` left by writers that died (kill -9, crash)."""
    remove_stale_siblings(target, ("tmp",))


@contextlib.contextmanager
def atomic_write(
    url: str,
    *,
    fmt: str,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
    **storage_options: Any,
) -> Iterator[Commit]:
    """Context manager committing a dataset atomically at ``url``.

    Yields a :class:`Commit`; write the dataset at ``commit.url``. On success the marker is
    published (and, locally, the temporary directory renamed into place). On failure nothing
    readable is left behind. An incomplete dataset (no marker) may always be replaced.
    """
    url = normalise_url(url)
    check_writable_destination(url, overwrite, storage_options)
    proto, path = split_protocol(url)
    payload = _marker_payload(fmt, extra)
    if proto == "file":
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"Cannot create the folder for output {url}: {exc.strerror}.") from None
        if not os.access(target.parent, os.W_OK):
            raise UsageError(f"Output folder {target.parent} is not writable (output {url}).")
        _remove_stale_siblings(target)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        commit = Commit(final_url=url, url=str(tmp), fmt=fmt)
        try:
            tmp.mkdir()
            yield commit
            tmp.mkdir(exist_ok=True)
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
    fs, fpath = filesystem(url, **storage_options)
    if fs.exists(fpath):
        # Retract the old marker first: from here on readers refuse the prefix.
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{fpath}/{MARKER}")
        fs.rm(fpath, recursive=True)
    commit = Commit(final_url=url, url=url, fmt=fmt)
    yield commit
    fs.pipe_file(f"{fpath}/{MARKER}", json.dumps(payload).encode())
    commit.marker = payload


def update_marker(url: str, *, extra: Mapping[str, Any] | None = None, **storage_options: Any) -> dict[str, Any]:
    """Publish a new version marker for an in-place update of ``url`` (e.g. a delta overlay)."""
    old = read_marker(url, **storage_options) or {}
    kept = {k: v for k, v in old.items() if k not in ("version", "created", "writer", "format")}
    payload = _marker_payload(old.get("format", "unknown"), {**kept, **dict(extra or {})})
    fs, path = filesystem(url, **storage_options)
    fs.pipe_file(f"{path}/{MARKER}", json.dumps(payload).encode())
    return payload


def retract_marker(url: str, **storage_options: Any) -> None:
    """Remove the marker of ``url`` (readers refuse it until :func:`update_marker`)."""
    fs, path = filesystem(url, **storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(f"{path}/{MARKER}")


def remove(url: str, **storage_options: Any) -> None:
    """Delete the dataset at ``url`` (marker first)."""
    fs, path = filesystem(url, **storage_options)
    if fs.exists(path):
        retract_marker(url, **storage_options)
        fs.rm(path, recursive=True)


def du(url: str, **storage_options: Any) -> int:
    """Total bytes stored under ``url``."""
    fs, path = filesystem(url, **storage_options)
    return int(sum(info["size"] for info in fs.find(path, detail=True).values()))


def etags(url: str, **storage_options: Any) -> dict[str, str]:
    """Object name -> ETag (S3) or size:mtime fingerprint (elsewhere), to detect modification."""
    fs, path = filesystem(url, **storage_options)
    fs.invalidate_cache()
    out = {}
    for name, info in fs.find(path, detail=True).items():
        out[name] = str(info.get("ETag") or f"{info.get('size')}:{info.get('mtime') or info.get('created')}")
    return out
