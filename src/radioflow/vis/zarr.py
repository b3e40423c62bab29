"""Visibility datasets as Zarr v3 stores (local, S3, memory).

Layout (see docs/data-format.md)::

    x.zarr/
      .radioflow-complete        completion marker, written last (see storage.py)
      zarr.json                  root group; attrs["radioflow"] = {format, format_version,
                                 kind ("dataset" | "delta"), groups, ...}
      FIELD0_SPW0/               one group per field x spectral window: the schema dataset
        VISIBILITY/ WEIGHT/ FLAG/ UVW/ ...   chunked over (time, frequency), whole baselines
        time/ frequency/ polarization/ antenna_name/ ANTENNA_POSITION/ ...   small arrays

Big arrays use a cheap codec (blosc-lz4, byte shuffle) so that writing runs near disk speed;
metadata is consolidated into the root ``zarr.json`` so that opening a store on S3 costs one
request. Reads are lazy (dask), one dask chunk per Zarr chunk.
"""
from __future__ import annotations

import warnings
from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import UsageError
from . import storage
from .location import Location, as_location

Target = str | Location

FORMAT = "radioflow-vis-zarr"
FORMAT_VERSION = 1
#: Target size of one chunk of a visibility-shaped variable.
CHUNK_BYTES = 16 * 2**20
_CHUNKED_DIMS = ("time", "frequency")



def group_name(ds: xr.Dataset) -> str:
    """Group of ``ds`` in a store: ``FIELD{field_id}_SPW{spw_id}`` (ids from attrs, default 0)."""
    return f"FIELD{int(ds.attrs.get('field_id', 0))}_SPW{int(ds.attrs.get('spw_id', 0))}"


def parse_chunks(text: str | Mapping[str, int] | None) -> dict[str, int]:
    """``"time=10,frequency=64"`` (or a mapping) -> ``{"time": 10, "frequency": 64}``."""
    if text is None or text == "":
        return {}
    items: list[tuple[str, Any]]
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        items = []
        for part in str(text).split(","):
            if "=" not in part:
                raise UsageError(f"Chunk specification '{text}' must look like time=10,frequency=64.")
            key, val = part.split("=", 1)
            items.append((key.strip(), val.strip()))
    out = {}
    for key, val in items:
        if key not in _CHUNKED_DIMS:
            raise UsageError(f"Chunks can be set for {', '.join(_CHUNKED_DIMS)}, not '{key}' (in '{text}').")
        try:
            n = int(val)
        except (TypeError, ValueError):
            raise UsageError(f"Chunk size for {key} must be an integer, got '{val}'.") from None
        if n < 1:
            raise UsageError(f"Chunk size for {key} must be at least 1, got {n}.")
        out[key] = n
    return out


def choose_chunks(ds: xr.Dataset, chunks: Mapping[str, int] | None = None) -> dict[str, int]:
    """Time/frequency chunk sizes: the given ones, else whole bands and ~16 MB time blocks."""
    chunks = dict(chunks or {})
    nfreq = ds.sizes.get("frequency", 1)
    cf = min(chunks.get("frequency", nfreq), nfreq) or 1
    if "time" not in chunks:
        per_time = max(1, ds.sizes.get("baseline", 1) * cf * ds.sizes.get("polarization", 1) * 8)
        chunks["time"] = max(1, CHUNK_BYTES // per_time)
    return {"time": max(1, min(chunks["time"], ds.sizes.get("time", 1))), "frequency": max(1, cf)}


def compressor(dtype: Any = None):
    """The codec for a big array, or None: visibilities and UVW are noise-like and do not
    compress, so they are stored raw (disk speed); flags and weights compress well with
    blosc-lz4 at a few GB/s."""
    from zarr.codecs import BloscCodec

    kind = np.dtype(dtype).kind if dtype is not None else "b"
    if kind in "cf" and np.dtype(dtype).itemsize >= 8:
        return None
    return BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle" if kind == "b" else "shuffle",
                      typesize=np.dtype(dtype).itemsize if dtype is not None else 1, blocksize=0)


def _encoding(ds: xr.Dataset, chunks: Mapping[str, int]) -> dict[Hashable, dict[str, Any]]:
    enc: dict[Hashable, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "OUS":
            continue
        shape = tuple(chunks.get(d, n) if d in _CHUNKED_DIMS else n for d, n in var.sizes.items())
        big = any(d in _CHUNKED_DIMS for d in var.dims) and var.ndim > 1
        enc[name] = {"chunks": tuple(max(1, s) for s in shape)}
        codec = compressor(var.dtype) if big else None
        enc[name]["compressors"] = (codec,) if codec is not None else None
    return enc


def _encode_strings(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width unicode has no Zarr v3 spec; store strings as variable-length UTF-8."""
    repl = {n: xr.Variable(v.dims, np.asarray(v.values).astype(object), v.attrs)
            for n, v in ds.variables.items() if v.dtype.kind == "U"}
    if not repl:
        return ds
    ds = ds.copy()
    for name, var in repl.items():
        if name in ds.indexes:
            ds = ds.assign_coords({name: (var.dims, var.values.astype(object))})
        elif name in ds.coords:
            ds = ds.assign_coords({name: var})
        else:
            ds[name] = var
    return ds


def _decode_strings(ds: xr.Dataset) -> xr.Dataset:
    repl = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "OT":
            values = np.asarray(var.values)
            fixed = np.array([str(v) for v in values.ravel()] or [""], dtype=str)
            repl[name] = (var.dims, fixed[: values.size].reshape(values.shape), var.attrs)
    if not repl:
        return ds
    coords = {k: v for k, v in repl.items() if k in ds.coords}
    data = {k: v for k, v in repl.items() if k not in ds.coords}
    if coords:
        ds = ds.assign_coords(coords)
    if data:
        ds = ds.assign(data)
    return ds


def prepare(ds: xr.Dataset, chunks: Mapping[str, int] | None) -> tuple[xr.Dataset, dict[Hashable, dict[str, Any]]]:
    """``ds`` ready for ``to_zarr`` (strings encoded, dask chunks aligned) and its encoding."""
    chunks = choose_chunks(ds, chunks)
    ds = _encode_strings(ds)
    for name in list(ds.data_vars):
        var = ds[name]
        if var.chunks is not None:
            ds[name] = var.chunk({d: chunks[d] for d in var.dims if d in chunks})
    enc = _encoding(ds, chunks)
    for variable in ds.variables.values():
        variable.encoding = {}
    return ds, enc


def write_group(store: Any, ds: xr.Dataset, *, chunks: Mapping[str, int] | None = None, compute: bool = True,
                name: str | None = None) -> Any:
    """Write ``ds`` as group ``name`` (default: its field/spw group) into an open zarr ``store``."""
    name = name or group_name(ds)
    ds, enc = prepare(ds, chunks)
    with warnings.catch_warnings():
        # object stores that keep empty "directories" (SeaweedFS) make zarr warn about them
        warnings.simplefilter("ignore")
        return ds.to_zarr(store, group=name, mode="w", zarr_format=3, consolidated=False,
                          encoding=enc, compute=compute)  # type: ignore[call-overload]  # bool, not a Literal


def finish_store(store: Any, groups: Sequence[str], kind: str = "dataset", extra: Mapping[str, Any] | None = None) -> None:
    """Write the root attributes and consolidate metadata (the step before the marker)."""
    import zarr

    root = zarr.open_group(store, mode="a", zarr_format=3)
    root.attrs["radioflow"] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
        "groups": sorted(groups), **dict(extra or {}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(store, zarr_format=3)


def write_zarr(
    ds: xr.Dataset | Iterable[xr.Dataset],
    url: Target,
    *,
    chunks: Mapping[str, int] | str | None = None,
    overwrite: bool = False,
    **storage_options: Any,
) -> str:
    """Write one dataset (or several, one per field/spw) to a Zarr store at ``url``, atomically.

    ``chunks`` sets the time/frequency chunk sizes (default: whole band, ~16 MB per chunk).
    Dask-backed datasets are written chunk by chunk, so memory stays bounded. Returns the URL.
    """
    loc = as_location(url, **storage_options)
    datasets = [ds] if isinstance(ds, xr.Dataset) else list(ds)
    names = [group_name(d) for d in datasets]
    if len(set(names)) != len(names):
        raise UsageError(f"Datasets written to {loc} share a field/spw group: {names}.")
    parsed = parse_chunks(chunks) if not isinstance(chunks, Mapping) else parse_chunks(dict(chunks))
    with storage.atomic_write(loc, fmt="zarr", overwrite=overwrite) as commit:
        store = commit.location.zarr_store(read_only=False)
        import zarr

        zarr.open_group(store, mode="w", zarr_format=3)
        for d in datasets:
            write_group(store, d, chunks=parsed)
        finish_store(store, names)
    return commit.final_url


def root_attrs(url: Target, **storage_options: Any) -> dict[str, Any]:
    """The ``radioflow`` root attributes of a committed store."""
    import zarr

    loc = as_location(url, **storage_options)
    storage.require_complete(loc)
    store = loc.zarr_store(read_only=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = zarr.open_consolidated(store, zarr_format=3)
    except Exception:
        try:
            root = zarr.open_group(store, mode="r", zarr_format=3)
        except Exception as exc:
            raise UsageError(f"{url} is not a Zarr store radioflow can read: {exc}") from None
    found = root.attrs.get("radioflow")
    attrs: dict[str, Any] = dict(found) if isinstance(found, Mapping) else {}
    if attrs.get("format") != FORMAT:
        raise UsageError(f"{url} is a Zarr store but not a radioflow visibility dataset.")
    return attrs


def select_group(url: Target, attrs: Mapping[str, Any], field: int | None, spw: int | None, group: str | None) -> str:
    """Name of the group to open, checking it exists."""
    groups = list(attrs.get("groups") or [])
    if group is None:
        if field is None and spw is None:
            if len(groups) == 1:
                return groups[0]
            field, spw = 0, 0
        group = f"FIELD{int(field or 0)}_SPW{int(spw or 0)}"
    if group not in groups:
        raise UsageError(f"{url} has no group {group}; it holds {', '.join(groups) or 'no groups'}.")
    return group


def read_zarr(
    url: Target,
    *,
    field: int | None = None,
    spw: int | None = None,
    group: str | None = None,
    variables: Sequence[str] | None = None,
    store: Any = None,
    check: bool = True,
    **storage_options: Any,
) -> xr.Dataset:
    """Open the dataset of one field/spw of a committed Zarr store lazily (dask arrays).

    Refuses stores without a completion marker. ``variables`` restricts the data variables.
    ``store`` substitutes the zarr store (e.g. a caching wrapper) for the one ``url`` names.
    ``check`` (default on) refuses a store with a missing or wrongly sized chunk.
    """
    loc = as_location(url, **storage_options)
    attrs = root_attrs(loc)
    name = select_group(loc, attrs, field, spw, group)
    if check:
        from .integrity import check_store

        check_store(loc, storage.read_marker(loc) or {})
    if store is None:
        store = loc.zarr_store(read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(store, group=name, consolidated=True, zarr_format=3, chunks={},
                          decode_times=False, decode_timedelta=False)
    if variables is not None:
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise UsageError(f"{loc} ({name}) has no variable(s) {', '.join(missing)}.")
        ds = ds[[*variables]]
    ds = _decode_strings(ds)
    for var in ds.variables.values():
        var.encoding.pop("coordinates", None)
        var.attrs.pop("_FillValue", None)
    ds.encoding = {"source": loc.url, "group": name, "radioflow_zarr": (loc, name)}
    return ds


def list_groups(url: Target, **storage_options: Any) -> list[str]:
    """The field/spw groups of the store at ``url``."""
    return list(root_attrs(url, **storage_options).get("groups") or [])
