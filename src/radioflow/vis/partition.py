"""Split visibility datasets into partitions and concatenate them back exactly.

A partition is an ordinary dataset (MS or Zarr) at its own URL, so scatter loops hand each
one to a step. Splits: ``n`` equal-duration time chunks (the Lithops workflow's split),
fixed time intervals, ``n`` channel groups or explicit frequency ranges, and one dataset per
field x spectral window group. :func:`concat` puts time or frequency partitions back together
and reproduces the original dataset exactly (values, dtypes, coordinates, attributes).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..errors import UsageError
from .location import Location, as_location


def _time_bins(ds: xr.Dataset, width: float, origin: float, n: int | None) -> np.ndarray:
    time = np.asarray(ds["time"].values, np.float64)
    idx = np.floor((time - origin) / width).astype(np.int64)
    return idx.clip(0, (n - 1) if n else None)


def split_time(ds: xr.Dataset, *, n: int | None = None, interval: float | None = None) -> list[xr.Dataset]:
    """Split along time into ``n`` equal-duration chunks or chunks of ``interval`` seconds.

    Durations count whole integrations: the observation spans from the first integration's
    start to the last one's end. Empty interval chunks (gaps) are dropped; empty ``n`` chunks
    are an error (ask for fewer partitions).
    """
    if (n is None) == (interval is None):
        raise UsageError("Split by time needs exactly one of n (number of partitions) or interval (seconds).")
    if interval is not None and not (np.isfinite(interval) and interval > 0):
        raise UsageError(f"The time partition interval must be a positive number of seconds, got {interval}.")
    ntime = ds.sizes["time"]
    time = np.asarray(ds["time"].values, np.float64)
    dt = float(ds.attrs.get("integration_time") or (np.median(np.diff(time)) if ntime > 1 else 1.0))
    origin = float(time.min()) - dt / 2
    span = float(time.max()) + dt / 2 - origin
    if n is not None:
        if int(n) < 1 or int(n) > ntime:
            raise UsageError(f"Number of time partitions n={n} must be between 1 and the number of time steps ({ntime}).")
        n = int(n)
        bins = _time_bins(ds, span / n, origin, n)
        count = n
    else:
        if not interval or interval <= 0:
            raise UsageError(f"Partition interval must be a positive number of seconds, got {interval}.")
        bins = _time_bins(ds, float(interval), origin, None)
        count = int(bins.max()) + 1
    parts = []
    for k in range(count):
        sel = np.flatnonzero(bins == k)
        if sel.size == 0:
            if n is not None:
                raise UsageError(
                    f"Time partition {k} of {n} holds no time step (the observation has gaps or too few "
                    f"integrations); ask for fewer partitions."
                )
            continue
        parts.append(ds.isel(time=slice(int(sel[0]), int(sel[-1]) + 1)))
    return parts


def split_frequency(ds: xr.Dataset, *, n: int | None = None,
                    ranges: Sequence[tuple[float, float]] | None = None) -> list[xr.Dataset]:
    """Split along frequency into ``n`` contiguous channel groups or ``[fmin, fmax)`` ranges (Hz)."""
    if (n is None) == (ranges is None):
        raise UsageError("Split by frequency needs exactly one of n (number of partitions) or ranges.")
    nchan = ds.sizes["frequency"]
    if n is not None:
        if int(n) < 1 or int(n) > nchan:
            raise UsageError(f"Number of frequency partitions n={n} must be between 1 and the channel count ({nchan}).")
        return [ds.isel(frequency=slice(int(c[0]), int(c[-1]) + 1))
                for c in np.array_split(np.arange(nchan), int(n))]
    assert ranges is not None
    freq = np.asarray(ds["frequency"].values)
    parts = []
    for lo, hi in ranges:
        sel = np.flatnonzero((freq >= lo) & (freq < hi))
        if sel.size == 0:
            raise UsageError(f"Frequency range {lo:g}..{hi:g} Hz holds no channel (the band is {freq.min():g}..{freq.max():g} Hz).")
        parts.append(ds.isel(frequency=sel))
    return parts


def parse_ranges(text: str) -> list[tuple[float, float]]:
    """``"100e6:105e6,105e6:110e6"`` -> ``[(1e8, 1.05e8), (1.05e8, 1.1e8)]``."""
    out = []
    for part in text.split(","):
        try:
            lo, hi = (float(x) for x in part.split(":"))
        except ValueError:
            raise UsageError(f"Frequency range '{part}' must look like 100e6:105e6 (Hz).") from None
        if hi <= lo:
            raise UsageError(f"Frequency range '{part}' is empty: its end must exceed its start.")
        out.append((lo, hi))
    return out


def _concat_dim(parts: Sequence[xr.Dataset]) -> str:
    first = parts[0]
    same_time = all(p.sizes["time"] == first.sizes["time"] and np.array_equal(p["time"].values, first["time"].values)
                    for p in parts[1:])
    return "frequency" if same_time and len(parts) > 1 else "time"


def concat(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Concatenate time or frequency partitions (in any order) back into one dataset."""
    parts = list(parts)
    if not parts:
        raise UsageError("Nothing to concatenate: no partitions were given.")
    if len(parts) == 1:
        return parts[0]
    dim = _concat_dim(parts)
    parts.sort(key=lambda p: float(p[dim].values[0]))
    first = parts[0]
    for k, p in enumerate(parts[1:], 1):
        for name in ("baseline_antenna1", "baseline_antenna2", "antenna_name", "polarization"):
            if not np.array_equal(p[name].values, first[name].values):
                raise UsageError(f"Partition {k} differs from partition 0 in {name}; they are not parts of one dataset.")
        other = "frequency" if dim == "time" else "time"
        if not np.array_equal(p[other].values, first[other].values):
            raise UsageError(f"Partition {k} has other {other} values than partition 0; cannot concatenate along {dim}.")
    coord = np.concatenate([p[dim].values for p in parts])
    if np.any(np.diff(coord) <= 0):
        raise UsageError(f"Partitions overlap along {dim}; each {dim} value must come from one partition only.")
    return xr.concat(parts, dim=dim, data_vars="minimal", coords="minimal", compat="override",
                     join="override", combine_attrs="override")


def split(ds: xr.Dataset, *, by: str = "time", n: int | None = None, interval: float | None = None,
          ranges: Sequence[tuple[float, float]] | None = None) -> list[xr.Dataset]:
    """Dispatch to :func:`split_time` (``by="time"``) or :func:`split_frequency`."""
    if by == "time":
        return split_time(ds, n=n, interval=interval)
    if by == "frequency":
        return split_frequency(ds, n=n, ranges=ranges)
    raise UsageError(f"Cannot split by '{by}': choose time, frequency, field or spw.")


def part_urls(prefix: str | Location, count: int, fmt: str) -> list[str]:
    """``prefix-000.fmt`` ... (a ``.zarr``/``.ms`` suffix on ``prefix`` is dropped first)."""
    prefix = str(prefix)
    for suffix in (".zarr", ".ms"):
        if prefix.endswith(suffix):
            prefix = prefix[: -len(suffix)]
    return [f"{prefix}-{k:03d}.{fmt}" for k in range(count)]


def partition(src: str | Location, dst_prefix: str | Location, *, by: str = "time", n: int | None = None,
              interval: float | None = None, ranges: Sequence[tuple[float, float]] | None = None,
              fmt: str | None = None, overwrite: bool = False, **storage_options: Any) -> list[str]:
    """Split the dataset at ``src`` and write each part as a dataset; returns the part URLs.

    ``by="field"``/``"spw"`` writes one dataset per field x spectral-window group of a
    multi-group Zarr store or MS.
    """
    from . import io

    loc = as_location(src, **storage_options)
    fmt = fmt or io.format_of(loc)
    if by in ("field", "spw", "group"):
        groups = source_groups(loc)
        stem = str(dst_prefix).removesuffix('.zarr').removesuffix('.ms')
        urls = [f"{stem}-{name}.{fmt}" for name, _, _ in groups]
        for url, (_, field, spw) in zip(urls, groups):
            io.write_dataset(io.open_dataset(loc, field=field, spw=spw), url, overwrite=overwrite)
        return urls
    ds = io.open_dataset(loc)
    parts = split(ds, by=by, n=n, interval=interval, ranges=ranges)
    urls = part_urls(dst_prefix, len(parts), fmt)
    for url, part in zip(urls, parts):
        io.write_dataset(part, url, overwrite=overwrite)
    return urls


def source_groups(src: str | Location, **storage_options: Any) -> list[tuple[str, int, int]]:
    """``(group name, field, spw)`` for every field x spectral window with data in ``src``."""
    from . import io

    loc = as_location(src, **storage_options)
    if io.format_of(loc) == "zarr":
        from .zarr import list_groups

        out = []
        for name in list_groups(loc):
            field, spw = name.removeprefix("FIELD").split("_SPW")
            out.append((name, int(field), int(spw)))
        return out
    from casacore import tables as ct

    from .ms import CASACORE_LOCK
    from .ms_subtables import subtable_name

    path = str(io.local_ms_path(loc))
    with CASACORE_LOCK, ct.table(path, ack=False) as t:
        pairs = np.unique(np.stack([t.getcol("FIELD_ID"), t.getcol("DATA_DESC_ID")]), axis=1)
        with ct.table(subtable_name(path, "DATA_DESCRIPTION"), ack=False) as dd:
            spw_of = dd.getcol("SPECTRAL_WINDOW_ID")
    return [(f"FIELD{int(f)}_SPW{int(spw_of[d])}", int(f), int(spw_of[d])) for f, d in pairs.T]


def concat_urls(parts: Sequence[str | Location], dst: str | Location, *, overwrite: bool = False, **storage_options: Any) -> str:
    """Concatenate the datasets at ``parts`` and write the result to ``dst``; returns ``dst``."""
    from . import io

    if not parts:
        raise UsageError("Nothing to concatenate: no partition URLs were given.")
    datasets = [io.open_dataset(u, **storage_options) for u in parts]
    return io.write_dataset(concat(datasets), dst, overwrite=overwrite)

