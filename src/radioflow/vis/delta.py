"""Delta-sets: a read-only base dataset plus a thin Zarr overlay that receives every write.

A delta is a radioflow Zarr store whose root attributes say ``kind: "delta"`` and name its
``parent`` (URL of an MS, a Zarr store or another delta) and the parent's commit version at
the time the delta was created. Its groups hold only the variables written through it (no
coordinates). Reading a delta opens its parent (recursively) and replaces or adds the
overlay's variables: overlay variables win. The base is never written, so an archive stays
untouched and many processing versions share it. If the parent has been rewritten since (its
version changed) the delta refuses to open, because its variables no longer line up.

:func:`squash` materialises a chain into a new, self-contained dataset; :func:`history` lists
the chain from the newest delta down to the base. The format is documented in
docs/data-format.md.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import xarray as xr

from ..errors import UsageError
from ..processes import pause_point
from . import storage
from .location import Location, as_location
from .zarr import read_zarr, root_attrs, write_group

Target = str | Location


def _group_for(ds: xr.Dataset, field: int | None, spw: int | None) -> str:
    enc = ds.encoding.get("group")
    if enc:
        return enc
    return f"FIELD{int(field or ds.attrs.get('field_id', 0))}_SPW{int(spw or ds.attrs.get('spw_id', 0))}"


def _overlay_variables(variables: xr.Dataset | Mapping[str, Any], base: xr.Dataset, url: Target) -> xr.Dataset:
    """The variables to store, stripped of coordinates and checked against ``base``'s shapes."""
    if isinstance(variables, xr.Dataset):
        items = {name: variables[name] for name in variables.data_vars}
    else:
        items = {name: (v if isinstance(v, xr.DataArray) else xr.DataArray(v)) for name, v in variables.items()}
    if not items:
        raise UsageError(f"Nothing to write to delta {url}: no variables were given.")
    out = {}
    for name, var in items.items():
        for dim in var.dims:
            if dim not in base.sizes:
                raise UsageError(f"Variable {name} for delta {url} has dimension '{dim}', which the base dataset lacks.")
            if var.sizes[dim] != base.sizes[dim]:
                raise UsageError(
                    f"Variable {name} for delta {url} has {var.sizes[dim]} along '{dim}' but the base has "
                    f"{base.sizes[dim]}; a delta must cover the whole base dataset."
                )
        if name in base and base[name].dims != var.dims:
            raise UsageError(f"Variable {name} for delta {url} has dims {var.dims}, the base has {base[name].dims}.")
        out[name] = xr.Variable(var.dims, var.data, var.attrs)
    return xr.Dataset(out)


def write_delta(
    variables: xr.Dataset | Mapping[str, Any],
    url: Target,
    *,
    parent: Target | None = None,
    field: int | None = None,
    spw: int | None = None,
    overwrite: bool = False,
    **storage_options: Any,
) -> str:
    """Write ``variables`` into the delta at ``url``; create it over ``parent`` if needed.

    Only the given variables are stored (e.g. ``ds[["FLAG", "CORRECTED_DATA"]]``), with the
    base's chunking. Writing to an existing delta adds or replaces variables in it and
    publishes a new version. Returns the delta URL.
    """
    loc = as_location(url, **storage_options)
    parent_loc = None if parent is None else as_location(parent, **storage_options)
    existing = storage.read_marker(loc)
    if existing is not None and not overwrite:
        attrs = root_attrs(loc)
        if attrs.get("kind") != "delta":
            raise UsageError(f"{loc} is a dataset, not a delta overlay; choose another delta URL.")
        if parent_loc is not None and parent_loc.url != attrs["parent"]:
            raise UsageError(f"Delta {loc} sits over {attrs['parent']}, not over {parent}.")
        return _update(variables, loc, attrs, field, spw)
    if parent_loc is None:
        raise UsageError(f"Delta {loc} does not exist yet: give its parent dataset (parent=..., --parent).")
    from .io import open_dataset

    parent_version = storage.version_id(parent_loc)
    base = open_dataset(parent_loc, field=field, spw=spw)
    data = _overlay_variables(variables, base, loc)
    name = _group_for(base, field, spw)
    chunks = _base_chunks(base)
    extra = {"parent": parent_loc.url, "parent_version": parent_version,
             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "variables": {name: sorted(map(str, data.data_vars))}}
    with storage.atomic_write(loc, fmt="zarr-delta", overwrite=overwrite) as commit:
        import zarr

        from .zarr import finish_store

        store = commit.location.zarr_store(read_only=False)
        zarr.open_group(store, mode="w", zarr_format=3)
        write_group(store, data, chunks=chunks, name=name)
        finish_store(store, [name], kind="delta", extra=extra)
    return commit.final_url


def _base_chunks(base: xr.Dataset) -> dict[str, int]:
    chunks: dict[str, int] = {}
    for var in base.data_vars.values():
        if var.chunks is None:
            continue
        for dim, sizes in zip(var.dims, var.chunks):
            if dim in ("time", "frequency") and dim not in chunks:
                chunks[dim] = int(sizes[0])
    return chunks


def _update(variables: xr.Dataset | Mapping[str, Any], loc: Location, attrs: Mapping[str, Any],
            field: int | None, spw: int | None) -> str:
    from .zarr import finish_store

    # the committed view stays readable throughout: new chunks land beside it, the consolidated
    # metadata and the marker (with the new manifest) switch last. A variable being rewritten
    # may be damaged by a writer killed here; opening it is refused and a rerun rewrites it,
    # so the chunks are not checked when opening for this update.
    merged = open_delta(loc, field=field, spw=spw, verify=False)
    name = _group_for(merged, field, spw)
    data = _overlay_variables(variables, merged, loc)
    written = dict(attrs.get("variables") or {})
    store = loc.zarr_store(read_only=False)
    from .zarr import prepare

    # arrays of an update killed before it committed are not part of any version: drop them,
    # so that consolidating below cannot publish a half-written variable
    if name in written:
        for debris in _existing(store, name) - set(written[name]) - set(map(str, data.data_vars)):
            loc.fs.rm(loc.join(name, debris).path, recursive=True)

    ds, enc = prepare(data, _base_chunks(merged))
    ds.to_zarr(store, group=name, mode="a", zarr_format=3, consolidated=False,
               encoding={k: v for k, v in enc.items() if k not in _existing(store, name)})
    pause_point("delta-update")
    written[name] = sorted(set(written.get(name, [])) | set(data.data_vars))
    extra = {k: v for k, v in attrs.items() if k not in ("format", "format_version", "kind", "groups")}
    extra["variables"] = written
    finish_store(store, sorted(set(attrs.get("groups") or []) | {name}), kind="delta", extra=extra)
    storage.update_marker(loc)
    return loc.url


def _existing(store: Any, group: str) -> set[str]:
    import zarr

    try:
        return set(zarr.open_group(store, path=group, mode="r", zarr_format=3).array_keys())
    except Exception:
        return set()


def open_delta(url: Target, *, field: int | None = None, spw: int | None = None, cache: bool | None = None,
               check: bool = True, verify: bool = True, **storage_options: Any) -> xr.Dataset:
    """The merged view of the delta chain ending at ``url`` (lazy; overlay variables win).

    ``check``: refuse a parent rewritten since; ``verify``: refuse missing or damaged chunks."""
    from .io import open_dataset

    loc = as_location(url, **storage_options)
    attrs = root_attrs(loc)
    if attrs.get("kind") != "delta":
        raise UsageError(f"{loc} is not a delta overlay.")
    parent = as_location(attrs["parent"], **loc.options)
    if check:
        now = storage.version_id(parent)
        if now != attrs["parent_version"]:
            raise UsageError(
                f"The parent {parent} of delta {url} changed since the delta was written (version "
                f"{attrs['parent_version']} then, {now} now); the delta no longer lines up with it. "
                "Recreate the delta, or squash it before changing its parent."
            )
    base = open_dataset(parent, field=field, spw=spw, cache=cache)
    name = _group_for(base, field, spw)
    merged = base.copy()
    if name in (attrs.get("groups") or []):
        store = None
        if cache if cache is not None else loc.protocol == "s3":
            from .cache import ColumnCache

            store = ColumnCache().store(loc)
        over = read_zarr(loc, group=name, store=store, check=verify)
        for var in over.data_vars:
            merged[var] = (over[var].dims, over[var].data, over[var].attrs)
    merged.encoding = {"source": loc.url, "group": name}
    return merged


def history(url: Target, **storage_options: Any) -> list[dict[str, Any]]:
    """The chain from ``url`` down to its base: one dict per level (newest first)."""
    from .io import format_of

    out = []
    seen = set()
    current = as_location(url, **storage_options)
    while True:
        if current in seen:
            raise UsageError(f"Delta chain of {url} loops back to {current}.")
        seen.add(current)
        marker = storage.read_marker(current)
        entry: dict[str, Any] = {"url": current.url, "format": format_of(current),
                                 "version": storage.version_id(current),
                                 "created": (marker or {}).get("created")}
        if entry["format"] == "zarr":
            attrs = root_attrs(current)
            entry["kind"] = attrs.get("kind", "dataset")
            if entry["kind"] == "delta":
                entry["variables"] = attrs.get("variables", {})
                entry["parent_version"] = attrs["parent_version"]
                out.append(entry)
                current = as_location(attrs["parent"], **current.options)
                continue
        else:
            _require_ms(current)
            entry["kind"] = "dataset"
        out.append(entry)
        return out


def _require_ms(loc: Location) -> None:
    """A Measurement Set at the base of a chain must open as a casacore table."""
    from casacore import tables as ct

    from .io import local_ms_path
    from .ms import CASACORE_LOCK

    if not loc.is_local:
        return                      # checking a remote MS would download it
    path = local_ms_path(loc)
    try:
        with CASACORE_LOCK, ct.table(str(path), ack=False):
            pass
    except RuntimeError as exc:
        raise UsageError(f"{loc}: not a readable Measurement Set ({' '.join(str(exc).split())}); "
                         "'radioflow vis verify' lists what is wrong.") from None


def squash(url: Target, dst: Target, *, overwrite: bool = False, **storage_options: Any) -> str:
    """Materialise the delta chain at ``url`` into a self-contained dataset at ``dst``."""
    from .io import write_dataset

    merged = open_delta(url, **storage_options)
    merged.encoding = {}
    return write_dataset(merged, dst, overwrite=overwrite)


def is_delta(url: Target, **storage_options: Any) -> bool:
    """True if ``url`` is a committed delta overlay."""
    try:
        return root_attrs(url, **storage_options).get("kind") == "delta"
    except UsageError:
        return False
