"""Benchmark: streamed imaging memory against dataset size, and Dask strong scaling.

Builds (once, cached under ``bench/work/streaming/``) Zarr datasets of 2 M to ``--max-mvis`` M
visibilities by repeating one simulated hour of a 64-dish SKA-Mid subarray with shifted times
(cheap: the DFT runs once), then images each with ``radioflow image DS -size 2048 -abs-mem 1``
in a fresh process and reads its peak RSS: flat memory means the chunks stream. Then times the
largest dataset on a Dask LocalCluster of 1 and 2 workers (``-b dask``).
Prints a markdown table and writes it to ``bench/results/streaming.md``.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "streaming"


def base_dataset():
    from radioflow.science import observation as O
    from radioflow.science import skymodel as S
    from radioflow.science import telescopes as T
    from radioflow.science.simulate import simulate

    lay = T.load_layout("ska-mid-model").select(rmax=4000)
    idx = np.argsort(lay.radius())[:64]
    lay = lay.select(names=[lay.names[i] for i in idx])
    obs = O.make_observation(ra=0.5, dec=math.radians(-40), layout=lay, freq_min=1.30e9, freq_max=1.40e9,
                             nchan=32, start="2025-06-01T20:00:00", duration=600, integration=10)
    sky = S.random_field(0.5, math.radians(-40), radius=math.radians(0.3), nsources=5, flux_min=0.1,
                         flux_max=1.0, seed=2)
    return simulate(lay, obs, sky)


def dataset(mvis: int, base) -> Path:
    """A Zarr dataset of about ``mvis`` million visibilities (the base repeated in time)."""
    import xarray as xr

    from radioflow.vis.io import write_dataset

    path = WORK / f"vis-{mvis}M.zarr"
    if (path / ".radioflow-complete").exists():
        return path
    per = base["VISIBILITY"].shape[0] * base["VISIBILITY"].shape[1] * base["VISIBILITY"].shape[2]
    reps = max(1, round(mvis * 1e6 / per))
    span = float(base["time"].values[-1] - base["time"].values[0]) + 10.0
    parts = [base.assign_coords(time=base["time"].values + k * span) for k in range(reps)]
    joined = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal", compat="override")
    write_dataset(joined, str(path), chunks={"time": 6}, overwrite=True)
    return path


_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def image(ds: Path, extra: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS GiB) of one ``radioflow image`` run, measured in a fresh wrapper
    process so that each run's peak is its own."""
    cmd = [sys.executable, "-m", "radioflow", "image", str(ds), "-size", "2048", "2048", "-scale", "1asec",
           "-no-png", "-no-psf", "-name", str(WORK / "img"), *extra]
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK, *cmd], check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    return wall, int(out.stdout.split()[-1]) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-mvis", type=int, default=100)
    opts = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    base = base_dataset()
    sizes = [m for m in (2, 10, 25, 50, 100) if m <= opts.max_mvis]
    rows = ["| visibilities | wall (s) | peak RSS (GiB) |", "| ---: | ---: | ---: |"]
    for m in sizes:
        wall, rss = image(dataset(m, base), ["-abs-mem", "1"])
        rows.append(f"| {m} M | {wall:.1f} | {rss:.2f} |")
        print(rows[-1], flush=True)
    largest = dataset(sizes[-1], base)
    rows += ["", "| Dask workers | wall (s) |", "| ---: | ---: |"]
    for n in (1, 2):
        wall, _ = image(largest, ["-abs-mem", "1", "-b", "dask"],
                        {"RADIOFLOW_BACKEND__DASK__N_WORKERS": str(n),
                         "RADIOFLOW_BACKEND__DASK__SHOW_DASHBOARD": "false"})
        rows.append(f"| {n} | {wall:.1f} |")
        print(rows[-1], flush=True)
    rows.append(f"\n2048² dirty image (uniform density pass skipped: natural weights), {sizes[-1]} M visibilities "
                "for the Dask rows (LocalCluster workers of one thread each; ducc0 grids on the worker's threads); peak RSS of the image process (ru_maxrss of a fresh wrapper's children); "
                "flat memory over size is the criterion; 2 cores.")
    table = "\n".join(rows) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "streaming.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
