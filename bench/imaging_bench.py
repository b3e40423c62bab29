"""Benchmark: ``radioflow image`` against WSClean and bare ducc0 on one large MS; simulate throughput.

Simulates (once, cached under ``bench/work/``) a 64-antenna observation, 1 h at 10 s, 32
channels (≈ 23 M visibilities), writes it as an MS, then times in one run:

* ``radioflow image MS --size 2048 --scale S --weight natural --no-png --no-psf`` end to end
  (read, grid, write FITS) in a fresh process, against ``wsclean -j 2 -niter 0 -use-wgridder
  -wgridder-accuracy 1e-5`` on the same MS: both make the dirty image only (WSClean makes no
  PSF at ``-niter 0``);
* the same with the PSF (radioflow's default) against WSClean with ``-make-psf``;
* the bare ``ducc0 vis2dirty`` call (dirty only) on arrays already in memory, and reading the MS.

Each timed command runs ``--repeat`` times (default 5) and the median is reported: this VM's
wall times vary by ±10 %. Peak memory is each process's maximum resident set (GNU time's %M, the largest over its runs).
Targets (issues 2, 14): radioflow ≤ 0.45 × WSClean's time with ≤ its peak memory, and
≤ 1.3 × (MS read + bare ducc0).
Also reports ``radioflow simulate`` throughput in visibilities × sources per second.
Prints a markdown table and writes it to ``bench/results/imaging.md``.
"""
from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def simulate_ms(path: Path, nsources: int, duration: float = 3600) -> tuple[float, int]:
    from radioflow.science import observation as O
    from radioflow.science import skymodel as S
    from radioflow.science import telescopes as T
    from radioflow.science.simulate import simulate
    from radioflow.vis.ms import write_ms

    lay = T.load_layout("ska-mid-model").select(rmax=4000)
    idx = np.argsort(lay.radius())[:64]
    lay = lay.select(names=[lay.names[i] for i in idx])
    obs = O.make_observation(ra=0.5, dec=math.radians(-40), layout=lay, freq_min=1.30e9, freq_max=1.40e9,
                             nchan=32, start="2025-06-01T20:00:00", duration=duration, integration=10)
    sky = S.random_field(0.5, math.radians(-40), radius=math.radians(0.3), nsources=nsources, flux_min=0.01,
                         flux_max=1.0, seed=2)
    t0 = time.perf_counter()
    ds = simulate(lay, obs, sky)
    elapsed = time.perf_counter() - t0
    write_ms(ds, path, overwrite=True)
    return elapsed, int(ds["VISIBILITY"].shape[0] * ds["VISIBILITY"].shape[1] * ds["VISIBILITY"].shape[2])


def timed(cmd: list[str], cwd: Path, repeat: int = 1) -> float:
    """Median wall time of ``repeat`` runs of ``cmd`` (peak memory in :data:`PEAK_MIB`).

    Peak memory comes from GNU ``/usr/bin/time``: a child forked from this (large) process would
    inherit its high-water mark through exec.
    """
    times = []
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
            t0 = time.perf_counter()
            subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *cmd], cwd=cwd, check=True,
                           capture_output=True)
            times.append(time.perf_counter() - t0)
            kib = float(rss.read().split()[-1])
        PEAK_MIB[" ".join(cmd)] = max(PEAK_MIB.get(" ".join(cmd), 0.0), kib / 1024)
    return float(np.median(times))


#: Peak resident memory (MiB, the process's ru_maxrss) of every timed command, by command line.
PEAK_MIB: dict[str, float] = {}


def peak(cmd: list[str]) -> float:
    return PEAK_MIB[" ".join(cmd)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npix", type=int, default=2048)
    ap.add_argument("--scale", default="1.5asec")
    ap.add_argument("--nsources", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "imaging.md")
    args = ap.parse_args()
    work = HERE / "work" / "imaging"
    work.mkdir(parents=True, exist_ok=True)
    ms = work / "bench64.ms"
    sim_s, nvis = simulate_ms(ms, args.nsources)
    rows = [("radioflow simulate (DFT, 64 ant, 360 × 32)",
             f"{sim_s:.2f} s", f"{nvis * args.nsources / sim_s / 1e6:.1f} M vis·src/s ({nvis / 1e6:.1f} M vis)")]

    rf_cmd = [str(Path(sys.executable).parent / "radioflow"), "image", str(ms), "--size", str(args.npix),
              "--scale", args.scale, "--weight", "natural", "--name", str(work / "rf"), "--no-png", "--threads", "2"]
    ws_cmd = ["wsclean", "-quiet", "-j", "2", "-niter", "0", "-use-wgridder", "-wgridder-accuracy", "1e-5",
              "-size", str(args.npix), str(args.npix), "-scale", args.scale, "-weight", "natural",
              "-name", str(work / "ws"), str(ms)]
    timed(rf_cmd + ["--no-psf"], work)  # warm the page cache and numba's cache once
    rf = timed(rf_cmd + ["--no-psf"], work, args.repeat)
    rf_psf = timed(rf_cmd, work, args.repeat)
    ws = ws_psf = None
    if shutil.which("wsclean"):
        ws = timed(ws_cmd, work, args.repeat)
        ws_psf = timed(ws_cmd[:-1] + ["-make-psf", str(ms)], work, args.repeat)

    # Fixed cost (issue 14): 0.5 M visibilities at 512², dirty + PSF, against WSClean -make-psf.
    small = work / "small.ms"
    simulate_ms(small, args.nsources, duration=80)
    small_rf = rf_cmd[:2] + [str(small), "--size", "512", "--scale", args.scale, "--name", str(work / "rf-small"),
                             "--no-png"]
    small_ws = ["wsclean", "-quiet", "-niter", "0", "-make-psf", "-size", "512", "512", "-scale", args.scale,
                "-name", str(work / "ws-small"), str(small)]
    timed(small_rf, work)
    small_rf_s = timed(small_rf, work, args.repeat)
    small_ws_s = timed(small_ws, work, args.repeat) if shutil.which("wsclean") else None

    from ducc0.wgridder.experimental import vis2dirty

    from radioflow.commands.wsclean_args import parse_angle
    from radioflow.science.imaging import stokes_i, uvw_rows
    from radioflow.vis.ms import read_ms

    t0 = time.perf_counter()
    ds = read_ms(ms)
    read_s = time.perf_counter() - t0
    vis, wgt, flag = stokes_i(ds)
    uvw, freq = uvw_rows(ds), ds["frequency"].values
    cell = parse_angle(args.scale)
    t0 = time.perf_counter()
    # The same precision radioflow uses at 1e-5: single-precision data, double accumulation.
    vis2dirty(uvw=uvw, freq=freq, vis=vis.astype(np.complex64), wgt=wgt.astype(np.float32), npix_x=args.npix,
              npix_y=args.npix, pixsize_x=cell, pixsize_y=cell, epsilon=1e-5, do_wgridding=True, nthreads=2,
              flip_v=True, divide_by_n=False, double_precision_accumulation=True)
    ducc_s = time.perf_counter() - t0
    rf_mem, rf_psf_mem = peak(rf_cmd + ["--no-psf"]), peak(rf_cmd)
    rows.append((f"radioflow image {args.npix}² --no-psf (read + dirty + FITS)", f"{rf:.2f} s, {rf_mem:.0f} MiB",
                 f"{rf / ws:.2f} × WSClean's time, {rf_mem / peak(ws_cmd):.2f} × its memory (target ≤ 0.45, ≤ 1)"
                 if ws else "wsclean not installed"))
    if ws:
        rows.append((f"wsclean -j 2 -niter 0 -use-wgridder {args.npix}² (dirty only)",
                     f"{ws:.2f} s, {peak(ws_cmd):.0f} MiB", "reference"))
    ws_psf_cmd = ws_cmd[:-1] + ["-make-psf", str(ms)]
    rows.append((f"radioflow image {args.npix}² (dirty + PSF, the default)", f"{rf_psf:.2f} s, {rf_psf_mem:.0f} MiB",
                 f"{rf_psf / ws_psf:.2f} × WSClean -make-psf's time, {rf_psf_mem / peak(ws_psf_cmd):.2f} × its memory"
                 if ws_psf else "wsclean not installed"))
    if ws_psf:
        rows.append((f"wsclean ... -make-psf {args.npix}² (dirty + PSF)", f"{ws_psf:.2f} s, {peak(ws_psf_cmd):.0f} MiB",
                     "reference"))
    rows.append(("MS read (python-casacore) + bare ducc0 vis2dirty", f"{read_s:.2f} + {ducc_s:.2f} s",
                 f"radioflow = {rf / (read_s + ducc_s):.2f} × (target ≤ 1.3)"))
    rows.append(("radioflow image 512², 0.5 M visibilities (dirty + PSF)", f"{small_rf_s:.2f} s",
                 f"{small_rf_s / small_ws_s:.2f} × WSClean -make-psf {small_ws_s:.2f} s (target ≤ 1.2)"
                 if small_ws_s else "wsclean not installed"))
    table = ["| imaging (issues 2, 14) | time, peak memory | ratio / throughput |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
