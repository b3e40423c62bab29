"""Where a dataset or file lives: a path or URL parsed once into a :class:`Location`.

A :class:`Location` holds the protocol (``file``, ``s3``, ``memory``), the path on that
protocol's filesystem (an absolute local path, ``bucket/key``, ``/key``), storage-option
overrides and, created on first use, the fsspec filesystem. Functions of :mod:`radioflow.vis`
take ``str | Location``, call :func:`as_location` once at the top and hand the Location down,
so a URL is parsed and its S3 settings resolved once per dataset rather than at every call.
New locations beside it come from :meth:`Location.join` / :meth:`Location.with_name`, never
from :mod:`pathlib`, which turns ``s3://b/k`` into the local folder ``s3:/b/k``.

S3 settings come from the radioflow configuration (``storage.s3.endpoint_url``, ``region``,
``access_key_env`` / ``secret_key_env``: the *names* of environment variables holding the
keys) or the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``). A Location keeps
credentials by reference: they are read from the environment when its filesystem is first
needed, never shown by ``repr``/``str`` and never pickled (a worker resolves its own).
"""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

from ..errors import UsageError
from ..secrets import is_secret

LOCAL = "file"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: Options fsspec's S3 filesystem gets unless the caller sets them.
_S3_DEFAULTS = {"default_block_size": 32 * 2**20, "use_listings_cache": False}


class StorageOptions(dict):
    """fsspec storage options whose ``repr``/``str`` never shows credentials."""

    def __repr__(self) -> str:
        shown = {k: ("***" if is_secret(k) else v) for k, v in self.items()}
        return f"StorageOptions({shown!r})"

    __str__ = __repr__


def scheme_of(text: str | os.PathLike[str]) -> str | None:
    """The lower-case URL scheme of ``text`` (``"s3"`` for ``s3://b/k``), None for a plain path."""
    match = _SCHEME.match(os.fspath(text))
    return match.group(1).lower() if match else None


def is_remote(target: str | os.PathLike[str] | Location) -> bool:
    """True when ``target`` names something off the local disk (``s3://``, ``memory://``,
    ``http://`` ...); false for plain paths and ``file://`` URLs. Never raises."""
    if isinstance(target, Location):
        return not target.is_local
    return scheme_of(target) not in (None, "file", "local")


def local_path(target: str | os.PathLike[str] | Location, base: str | os.PathLike[str] = ".") -> str | None:
    """The local path ``target`` names (relative paths taken from ``base``), None if it is remote.

    Unlike :meth:`Location.parse` it leaves ``~`` alone: recipe paths are taken as written."""
    if is_remote(target):
        return None
    if isinstance(target, Location):
        return target.path
    text = os.fspath(target)
    if scheme_of(text) is not None:
        text = text.split("://", 1)[1]
    return os.path.join(os.fspath(base), text)


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
    if endpoint:
        opts["endpoint_url"] = endpoint
    if region:
        opts["client_kwargs"] = {"region_name": region}
    return opts


@dataclass(frozen=True, eq=False, repr=False)
class Location:
    """One parsed dataset/file location. Build it with :meth:`parse` or :func:`as_location`."""

    protocol: str
    path: str
    options: StorageOptions = field(default_factory=StorageOptions)

    @classmethod
    def parse(cls, url: str | os.PathLike[str], **storage_options: Any) -> Location:
        """Parse a plain path or a ``file://``, ``s3://`` (``s3a://``) or ``memory://`` URL."""
        text = os.fspath(url)
        scheme = scheme_of(text)
        opts = StorageOptions(storage_options)
        if scheme is None:
            return cls(LOCAL, os.path.abspath(os.path.expanduser(text)), opts)
        rest = text.split("://", 1)[1]
        if scheme in ("file", "local"):
            return cls(LOCAL, os.path.abspath(os.path.expanduser(rest)), opts)
        if scheme in ("s3", "s3a"):
            return cls("s3", rest.strip("/"), opts)
        if scheme == "memory":
            return cls("memory", "/" + rest.strip("/"), opts)
        raise UsageError(
            f"Unsupported storage URL '{text}': radioflow reads and writes plain paths, file://, "
            "s3:// and memory:// URLs."
        )

    # ------------------------------------------------------------------ naming

    @property
    def url(self) -> str:
        """Canonical form: absolute local path, ``s3://bucket/key``, ``memory:///key``."""
        if self.protocol == LOCAL:
            return self.path
        return f"{self.protocol}://{self.path}"

    @property
    def is_local(self) -> bool:
        return self.protocol == LOCAL

    @property
    def name(self) -> str:
        """The last path component (``x.zarr`` of ``s3://b/d/x.zarr``)."""
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def parent(self) -> Location:
        """The location one level up (the folder or prefix holding this one)."""
        head = posixpath.dirname(self.path.rstrip("/"))
        if self.protocol == "memory":
            head = head or "/"
        return self._derive(head or self.path)

    def join(self, *parts: str) -> Location:
        """The location of ``parts`` below this one (``"/"``-joined on every protocol)."""
        base = self.path.rstrip("/")
        return self._derive("/".join([base, *[p.strip("/") for p in parts if p]]))

    def _derive(self, path: str) -> Location:
        """Another path on the same filesystem: options and filesystem are shared, not re-resolved."""
        new = Location(self.protocol, path, self.options)
        for key in ("storage_options", "fs"):
            if key in self.__dict__:
                new.__dict__[key] = self.__dict__[key]
        return new

    def with_name(self, name: str) -> Location:
        """A sibling: the same folder or prefix, last component ``name``."""
        return self.parent.join(name)

    def with_options(self, **storage_options: Any) -> Location:
        """This location with more storage-option overrides (no re-parse)."""
        if not storage_options:
            return self
        return replace(self, options=StorageOptions({**self.options, **storage_options}))

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        extra = f", options={self.options!r}" if self.options else ""
        return f"Location({self.url!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return (self.protocol, self.path) == (other.protocol, other.path)

    def __hash__(self) -> int:
        return hash((self.protocol, self.path))

    def __getstate__(self) -> dict[str, Any]:
        # the filesystem and the resolved options (credentials) stay behind
        return {"protocol": self.protocol, "path": self.path, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ------------------------------------------------------------------ access

    @cached_property
    def storage_options(self) -> StorageOptions:
        """Options for this protocol's filesystem: S3 settings (config, environment) plus the
        overrides. Resolved on first use, once per Location."""
        opts = s3_options() if self.protocol == "s3" else StorageOptions()
        opts.update(self.options)
        return opts

    @cached_property
    def fs(self) -> Any:
        """The fsspec filesystem (created on first use)."""
        import fsspec

        opts = StorageOptions(self.storage_options)
        if self.protocol == "s3":
            for key, value in _S3_DEFAULTS.items():
                opts.setdefault(key, value)
        return fsspec.filesystem(self.protocol, **opts)

    def zarr_store(self, *, read_only: bool) -> Any:
        """A zarr v3 store: ``LocalStore`` on disk, ``FsspecStore`` elsewhere."""
        import zarr.storage

        if self.is_local:
            return zarr.storage.LocalStore(self.path, read_only=read_only)
        if self.protocol == "s3":
            import fsspec

            opts = StorageOptions(self.storage_options)
            opts.setdefault("use_listings_cache", False)
            fs = fsspec.filesystem("s3", asynchronous=True, **opts)
        else:
            from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

            fs = AsyncFileSystemWrapper(self.fs, asynchronous=True)
        return zarr.storage.FsspecStore(fs, path=self.path, read_only=read_only)

    def download(self, local: str | os.PathLike[str], *, folder: bool | None = None) -> None:
        """Copy the file or folder (``folder``: which one, default: ask the store) here to ``local``."""
        if self.fs.isdir(self.path) if folder is None else folder:
            self.fs.get(self.path.rstrip("/") + "/", os.fspath(local), recursive=True)
        else:
            self.fs.get_file(self.path, os.fspath(local))

    def upload(self, local: str | os.PathLike[str]) -> None:
        """Copy the local file or folder ``local`` here (one object per file)."""
        src = os.fspath(local)
        if os.path.isdir(src):
            self.fs.put(src.rstrip("/") + "/", self.path, recursive=True)
        else:
            self.fs.put_file(src, self.path)


def as_location(target: str | os.PathLike[str] | Location, **storage_options: Any) -> Location:
    """``target`` as a :class:`Location`: parsed if a path or URL, as is (plus any option
    overrides) if already one."""
    if isinstance(target, Location):
        return target.with_options(**storage_options)
    return Location.parse(target, **storage_options)


#: Dataset formats by name suffix.
FORMATS = (".zarr", ".ms")


def format_of(url: str | Location) -> str:
    """``"zarr"`` or ``"ms"`` from the URL suffix; a :class:`UsageError` otherwise."""
    path = (url.path if isinstance(url, Location) else str(url)).rstrip("/")
    for suffix in FORMATS:
        if path.lower().endswith(suffix):
            return suffix[1:]
    raise UsageError(
        f"Cannot tell the format of dataset '{url}': its name must end in .ms (Measurement Set) "
        "or .zarr (Zarr store)."
    )
