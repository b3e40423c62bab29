"""Benchmark: MS -> Zarr conversion and Zarr reads (issue 5).

Builds (once, cached under ``bench/work/``) a Measurement Set with >= 1.5 GB of DATA
(64 antennas, 128 channels, 4 correlations), then measures in one run:

* ``dd`` sequential write speed of the same disk (16 MB blocks, ``conv=fdatasync``);
* ``radioflow vis convert MS x.zarr`` in a fresh process, including a final ``sync``, with
  its peak RSS (criterion: < 1 GB for a 2 GB MS);
* ``dask-ms convert`` of the same MS (PyPI ``dask-ms[zarr]``, which pins zarr < 3, in the
  separate venv ``bench/.venv-daskms``; installed on first use, skipped if that fails);
* reading every visibility, flag and weight: radioflow's Zarr store (dask, threads) against
  python-casacore ``getcol`` on the MS.

Targets: conversion >= 5x dask-ms and >= 50 % of dd. Throughputs count the bytes of the
source main-table columns moved (DATA, FLAG, WEIGHT_SPECTRUM, UVW). Prints a markdown table
and writes it to ``bench/results/convert.md``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "convert"
RADIOFLOW = str(Path(sys.executable).parent / "radioflow")
DASKMS_VENV = HERE / ".venv-daskms"


def make_ms(path: Path, nant: int, nchan: int, ntime: int) -> None:
    """Stream a random MS (noise visibilities, 5 % flags, unit weights) block by block."""
    from radioflow.vis.ms import MSWriter
    from radioflow.vis.schema import baseline_pairs, make_dataset

    rng = np.random.default_rng(1)
    a1, a2 = baseline_pairs(nant)
    nbl = a1.size
    enu = rng.normal(size=(nant, 3)) * 2000
    one = make_dataset(time=np.array([5.0e9]), frequency=1.3e9 + np.arange(nchan) * 1e6, antenna1=a1,
                       antenna2=a2, uvw=np.zeros((1, nbl, 3)), antenna_position=enu + 6.0e6,
                       antenna_name=[f"M{i:03d}" for i in range(nant)], phase_center=(0.5, -0.7),
                       visibility=np.zeros((1, nbl, nchan, 4), np.complex64), integration_time=10.0,
                       telescope_name="BENCH")
    template = one.isel(time=[0] * ntime).assign_coords(time=5.0e9 + 10.0 * np.arange(ntime))
    tmp = path.with_name(path.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    with MSWriter(tmp, template) as writer:
        step = max(1, (32 << 20) // (nbl * nchan * 32))
        for t0 in range(0, ntime, step):
            nt = min(step, ntime - t0)
            shape = (nt, nbl, nchan, 4)
            block = template.isel(time=slice(t0, t0 + nt)).copy()
            vis = rng.standard_normal(size=(*shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
            block["VISIBILITY"] = (block.VISIBILITY.dims, vis)
            block["FLAG"] = (block.FLAG.dims, rng.random(shape, dtype=np.float32) < 0.05)
            block["UVW"] = (block.UVW.dims, np.broadcast_to(enu[a2] - enu[a1], (nt, nbl, 3)).copy())
            writer.write_block(block, t0)
    os.replace(tmp, path)


def ms_bytes(path: Path) -> tuple[int, int]:
    """Bytes of DATA alone, and of DATA + FLAG + WEIGHT_SPECTRUM + UVW."""
    from casacore import tables as ct

    with ct.table(str(path), ack=False) as t:
        nrow = t.nrows()
        nchan, ncorr = t.getcell("DATA", 0).shape
    return nrow * nchan * ncorr * 8, nrow * (nchan * ncorr * (8 + 1 + 4) + 3 * 8)


def dd_speed(nbytes: int) -> float:
    target = WORK / "dd.bin"
    count = max(1, nbytes // (16 << 20))
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=16M", f"count={count}", "conv=fdatasync"],
                   check=True, capture_output=True)
    took = time.perf_counter() - t0
    target.unlink()
    return count * (16 << 20) / took


def run_timed(cmd: list[str]) -> tuple[float, int]:
    """Wall time (including a final sync) and peak RSS of ``cmd`` in a fresh grandchild."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); subprocess.run(['sync']); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True, text=True)
    secs, rss = out.stdout.split()
    return float(secs), int(rss) * 1024


def ensure_daskms(install: bool) -> Path | None:
    exe = DASKMS_VENV / "bin" / "dask-ms"
    if exe.exists() or not install:
        return exe if exe.exists() else None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(DASKMS_VENV)], check=True, capture_output=True)
        subprocess.run([str(DASKMS_VENV / "bin" / "pip"), "install", "-q", "dask-ms[zarr]"], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError):
        return None
    return exe if exe.exists() else None


def read_zarr_all(url: str) -> float:
    import dask

    from radioflow.vis.zarr import read_zarr

    ds = read_zarr(url)
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        for name in ("VISIBILITY", "FLAG", "WEIGHT", "UVW"):
            ds[name].data.map_blocks(lambda b: np.zeros((1,) * b.ndim, np.int8), dtype=np.int8,
                                     chunks=(1,) * ds[name].ndim).compute()
    return time.perf_counter() - t0


def read_ms_all(path: Path) -> float:
    from casacore import tables as ct

    t0 = time.perf_counter()
    with ct.table(str(path), ack=False) as t:
        nrow, step = t.nrows(), 50_000
        for col in ("DATA", "FLAG", "WEIGHT_SPECTRUM", "UVW"):
            for start in range(0, nrow, step):
                t.getcol(col, startrow=start, nrow=min(step, nrow - start))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nant", type=int, default=64)
    ap.add_argument("--nchan", type=int, default=128)
    ap.add_argument("--ntime", type=int, default=190, help="190 x 2016 baselines x 128 x 4 x 8 B = 1.57 GB DATA")
    ap.add_argument("--no-install-daskms", action="store_true", help="Skip dask-ms unless its venv exists.")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "convert.md")
    args = ap.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    ms = WORK / f"bench-{args.nant}a-{args.nchan}c-{args.ntime}t.ms"
    if not (ms / "table.dat").exists():
        print(f"building {ms} ...", flush=True)
        make_ms(ms, args.nant, args.nchan, args.ntime)
    data_bytes, nbytes = ms_bytes(ms)
    data_gb = data_bytes / 1e9
    rows = []

    dd = dd_speed(nbytes)
    rows.append(("dd write (16 MB blocks, fdatasync)", nbytes / dd, dd, "", ""))

    zarr_out = WORK / "radioflow.zarr"
    shutil.rmtree(zarr_out, ignore_errors=True)
    secs, rss = run_timed([RADIOFLOW, "vis", "convert", "-q", str(ms), str(zarr_out)])
    rf = nbytes / secs
    rows.append(("radioflow vis convert MS -> Zarr", secs, rf, f"{rss / 1e9:.2f} GB",
                 f"{rf / dd:.0%} of dd"))

    daskms = ensure_daskms(not args.no_install_daskms)
    dm = None
    if daskms is not None:
        out = WORK / "daskms.zarr"
        shutil.rmtree(out, ignore_errors=True)
        try:
            secs_dm, rss_dm = run_timed([str(daskms), "convert", str(ms), "-o", str(out), "--format", "zarr"])
            dm = nbytes / secs_dm
            rows.append(("dask-ms convert MS -> Zarr", secs_dm, dm, f"{rss_dm / 1e9:.2f} GB",
                         f"radioflow {rf / dm:.1f}x faster"))
        except subprocess.CalledProcessError as exc:
            rows.append(("dask-ms convert MS -> Zarr", float("nan"), float("nan"), "", f"failed: exit {exc.returncode}"))
        shutil.rmtree(out, ignore_errors=True)
    else:
        rows.append(("dask-ms convert MS -> Zarr", float("nan"), float("nan"), "", "dask-ms not installed"))

    zr = read_zarr_all(str(zarr_out))
    cr = read_ms_all(ms)
    rows.append(("read all columns: radioflow Zarr (dask threads)", zr, nbytes / zr, "",
                 f"{cr / zr:.1f}x casacore"))
    rows.append(("read all columns: python-casacore getcol on the MS", cr, nbytes / cr, "", ""))

    lines = [
        f"MS: {ms.name}, {data_gb:.2f} GB DATA, {nbytes / 1e9:.2f} GB moved (DATA + FLAG + WEIGHT_SPECTRUM + UVW); "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| operation | seconds | GB/s | peak RSS | note |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, secs_, rate, rss_, note in rows:
        if name.startswith("dd"):
            lines.append(f"| {name} | {nbytes / rate:.1f} | {rate / 1e9:.3f} | | |")
        else:
            lines.append(f"| {name} | {secs_:.1f} | {rate / 1e9:.3f} | {rss_} | {note} |")
    target = [f"conversion at {rf / dd:.0%} of dd (target >= 50 %)"]
    if dm:
        target.append(f"{rf / dm:.1f}x dask-ms (target >= 5x)")
    lines += ["", "Targets: " + "; ".join(target) + "."]
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    shutil.rmtree(zarr_out, ignore_errors=True)


if __name__ == "__main__":
    main()
