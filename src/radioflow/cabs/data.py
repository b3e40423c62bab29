"""Cabs: partition and concatenate datasets, model visibilities from a sky catalogue."""
from __future__ import annotations

from ..science.imaging import parallel_hands, uvw_rows
from ..science.predict import predict_rows
from ..science.skymodel import read_catalogue
from ..vis.io import write_columns
from ..vis.partition import concat_urls, partition
from ._util import cab_files, load_dataset, say


def partition_dataset(dataset: str, prefix: str, n: int = 4, by: str = "time", fmt: str = "ms") -> dict:
    """Split ``dataset`` into ``n`` equal-duration time (or frequency) chunks at ``prefix-NNN.<fmt>``."""
    parts = partition(dataset, prefix, by=by, n=n, fmt=fmt, overwrite=True)
    say(f"Partitioned {dataset} by {by} into {len(parts)} datasets: {parts[0]} … {parts[-1]}")
    return {"parts": parts}


def concat_datasets(parts: list[str], output: str) -> dict:
    """Concatenate partitions (all data columns) back into one dataset."""
    out = concat_urls(parts, output, overwrite=True)
    say(f"Concatenated {len(parts)} partitions -> {out}")
    return {"output": out}


def predict_sky(ms: str, sky: str, delta: str | None = None) -> dict:
    """MODEL_DATA of a dataset from a sky-model catalogue by direct Fourier sum (parallel hands).

    A local MS gets the column in place; a Zarr dataset (local or S3) gets it in a delta overlay
    (``delta``, default beside it). Returns ``dataset``: the URL that has MODEL_DATA.
    """
    ds = load_dataset(ms, columns=[])
    with cab_files() as files:
        model = read_catalogue(files.input(sky))
    ra, dec = ds.attrs["phase_center"]
    vis_i = predict_rows(model, uvw_rows(ds), ds["frequency"].values, ra, dec)
    out = parallel_hands(vis_i.reshape(ds.sizes["time"], ds.sizes["baseline"], -1), ds["polarization"].values)
    dataset = write_columns(ms, {"MODEL_DATA": out}, delta=delta)
    say(f"MODEL_DATA of {ms} from {len(model)} catalogue sources" + (f" (in {dataset})" if dataset != ms else ""))
    return {"dataset": dataset}
