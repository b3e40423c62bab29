"""Benchmark: radioflow CLEAN against WSClean on the same Measurement Set.

Simulates an SKA-Low observation (``ska-low-model`` layout cut at ``--rmax``, hour angles
±1 h, 100–110 MHz, point sources on pixel centres, thermal noise), writes it once as an MS
(kept under ``--workdir`` and reused), then times end to end on the same MS and threads:

* ``wsclean -use-wgridder -niter 10000 -mgain 0.8 -auto-threshold 3 -weight natural`` (its
  default gridder accuracy, 1e-4), writing its FITS images;
* radioflow streamed: ``radioflow image`` with the same options (``-wgridder-accuracy 1e-4``):
  major cycles stream over time chunks of the MS, nothing holds the whole column;
* with ``--in-memory`` also radioflow's in-memory path (read the MS, :func:`clean`, write FITS).

Each runs as its own process; wall time and peak resident memory (the child's ``VmHWM``) are
measured in the same run, so the ratios compare like with like. It checks both recover the
source fluxes (model summed in a 5×5 box) to 1 % of each other and prints one markdown table row
(``--header`` adds the table header); the table, that row and a note on the set-up are written to
``bench/results/clean.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from radioflow.science import observation as O  # noqa: E402
from radioflow.science import skymodel as S  # noqa: E402
from radioflow.science import telescopes as T  # noqa: E402
from radioflow.science.deconvolve import clean, write_clean_images  # noqa: E402
from radioflow.science.fits import read_fits_image  # noqa: E402
from radioflow.science.imaging import stokes_i, uvw_rows  # noqa: E402
from radioflow.science.simulate import simulate  # noqa: E402
from radioflow.vis.ms import read_ms, write_ms  # noqa: E402

RA0, DEC0 = math.radians(60.0), math.radians(-30.0)
HEADER = ("| visibilities | image | run | wall (s) | wall ratio | peak RSS (MiB) | memory ratio | iter/major | "
          "max flux difference |\n|---|---|---|---|---|---|---|---|---|")


def sources(npix: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    margin = npix // 8
    pix = rng.integers(margin, npix - margin, size=(n, 2))
    flux = np.round(rng.uniform(0.2, 2.0, n), 3)
    return pix, flux


def build_ms(path: Path, args: argparse.Namespace, cell: float) -> None:
    lay = T.load_layout("ska-low-model").select(rmax=args.rmax)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=args.nchan,
                             ha_range=(-math.pi / 12, math.pi / 12), ntimes=args.ntimes)
    pix, flux = sources(args.npix, args.nsrc, args.seed)
    ra, dec = S.pixel_to_radec(pix[:, 0], pix[:, 1], args.npix, args.npix, cell, cell, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, flux, ref_freq=1.05e8, spectral_index=0.0)
    ds = simulate(lay, obs, sky, noise_sigma=args.noise, seed=args.seed)
    write_ms(ds, path, overwrite=True)


def box_flux(model: np.ndarray, pix: np.ndarray, half: int = 2) -> np.ndarray:
    return np.array([model[y - half:y + half + 1, x - half:x + half + 1].sum() for x, y in pix])


def _hwm_mib(pid: int) -> float:
    """The process's peak resident memory so far (``VmHWM``; 0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``cmd`` (radioflow from this tree); its wall time (s) and peak resident memory (MiB).

    The peak is the child's own ``VmHWM``, polled until it exits (``wait4``'s ``ru_maxrss`` would
    carry over this process's size from the fork: it survives ``execve``).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                                     os.environ.get("PYTHONPATH")])))
    log = cwd / f"{Path(cmd[0]).name}-{len(list(cwd.glob('*.log')))}.log"
    peak = 0.0
    with open(log, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=err, env=env)
        while proc.poll() is None:
            peak = max(peak, _hwm_mib(proc.pid))
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"clean_bench: {cmd[0]} failed ({proc.returncode}): {log.read_text()[-1500:]}")
    return elapsed, peak


def run_wsclean(ms: Path, out: Path, args: argparse.Namespace) -> tuple[float, float, dict]:
    name = out / "wsclean"
    cmd = ["wsclean", "-quiet", "-j", str(args.threads), "-use-wgridder", "-niter", "10000", "-mgain", "0.8",
           "-auto-threshold", "3", "-weight", "natural", "-size", str(args.npix), str(args.npix),
           "-scale", f"{args.cell_asec}asec", "-name", str(name), str(ms)]
    elapsed, rss = timed(cmd, out)
    model, header = read_fits_image(f"{name}-model.fits")
    return elapsed, rss, {"model": model, "niter": int(header.get("WSCMINOR", -1)),
                          "nmajor": int(header.get("WSCMAJOR", -1))}


def run_streamed(ms: Path, out: Path, args: argparse.Namespace) -> tuple[float, float, dict]:
    name = out / "streamed"
    cmd = [sys.executable, "-m", "radioflow", "image", str(ms), "-j", str(args.threads), "-niter", "10000",
           "-mgain", "0.8", "-auto-threshold", "3", "-weight", "natural", "-size", str(args.npix), str(args.npix),
           "-scale", f"{args.cell_asec}asec", "-wgridder-accuracy", "1e-4", "-no-png", "-name", str(name)]
    elapsed, rss = timed(cmd, out)
    model, header = read_fits_image(f"{name}-model.fits")
    return elapsed, rss, {"model": model, "niter": int(header["WSCMINOR"]), "nmajor": int(header["WSCMAJOR"])}


def in_memory(ms: str, out: str, npix: int, cell: float, threads: int) -> None:
    """The in-memory path (run as ``clean_bench.py --in-memory-child``): read all, clean, write FITS."""
    ds = read_ms(ms)
    vis, wgt, flag = stokes_i(ds)
    wgt = np.where(flag, 0.0, wgt).astype(np.float32)
    res = clean(uvw_rows(ds), ds["frequency"].values, vis, wgt, npix, npix, cell, cell,
                niter=10000, mgain=0.8, auto_threshold=3.0, epsilon=1e-4, nthreads=threads)
    ra0, dec0 = ds.attrs["phase_center"]
    freq = ds["frequency"].values
    paths = write_clean_images(res, out, ra=ra0, dec=dec0, cell_x=cell, cell_y=cell, freq=float(freq.mean()),
                               bandwidth=float(np.ptp(freq) + ds["CHANNEL_WIDTH"].values[0]))
    Path(out + ".iter").write_text(f"{res.niter} {res.nmajor}")
    assert paths


def run_in_memory(ms: Path, out: Path, args: argparse.Namespace, cell: float) -> tuple[float, float, dict]:
    name = str(out / "inmemory")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--in-memory-child", str(ms), name, str(args.npix),
           repr(cell), str(args.threads)]
    elapsed, rss = timed(cmd, out)
    niter, nmajor = (int(v) for v in Path(name + ".iter").read_text().split())
    return elapsed, rss, {"model": read_fits_image(f"{name}-model.fits")[0], "niter": niter, "nmajor": nmajor}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rmax", type=float, default=900.0, help="layout radius cut (m)")
    ap.add_argument("--ntimes", type=int, default=40)
    ap.add_argument("--nchan", type=int, default=16)
    ap.add_argument("--npix", type=int, default=1024)
    ap.add_argument("--cell-asec", type=float, default=60.0)
    ap.add_argument("--nsrc", type=int, default=12)
    ap.add_argument("--noise", type=float, default=5.0, help="Jy per visibility real/imaginary part")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/radioflow-clean-bench"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "clean.md")
    ap.add_argument("--header", action="store_true", help="print the table header first")
    ap.add_argument("--in-memory", action="store_true", help="also time radioflow's in-memory CLEAN")
    ap.add_argument("--in-memory-child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_memory_child:
        ms_, out_, npix_, cell_, threads_ = args.in_memory_child
        in_memory(ms_, out_, int(npix_), float(cell_), int(threads_))
        return
    if shutil.which("wsclean") is None:
        raise SystemExit("clean_bench: the wsclean binary is not installed (Debian package wsclean).")
    cell = math.radians(args.cell_asec / 3600)
    args.workdir.mkdir(parents=True, exist_ok=True)
    tag = f"r{args.rmax:g}-t{args.ntimes}-c{args.nchan}-n{args.npix}-p{args.cell_asec:g}-s{args.nsrc}-{args.seed}"
    ms = args.workdir / f"bench-{tag}.ms"
    if not (ms / "table.dat").exists():
        print(f"building {ms} ...", file=sys.stderr)
        build_ms(ms, args, cell)
    from casacore import tables as ct

    with ct.table(str(ms), ack=False) as t:
        nvis = t.nrows() * t.getcell("DATA", 0).shape[0]
    out = args.workdir / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    load = os.getloadavg()[0]
    t_ws, m_ws, ws = run_wsclean(ms, out, args)
    runs = [("radioflow streamed", *run_streamed(ms, out, args))]
    if args.in_memory:
        runs.append(("radioflow in memory", *run_in_memory(ms, out, args, cell)))
    pix, _ = sources(args.npix, args.nsrc, args.seed)
    f_ws = box_flux(ws["model"], pix)
    rows = [f"| {nvis / 1e6:.1f} M | {args.npix}² | WSClean | {t_ws:.1f} | 1 | {m_ws:.0f} | 1 | "
            f"{ws['niter']}/{ws['nmajor']} | |"]
    worst = 0.0
    for label, t_rf, m_rf, rf in runs:
        diff = float(np.max(np.abs(box_flux(rf["model"], pix) - f_ws) / np.abs(f_ws)))
        worst = max(worst, diff)
        rows.append(f"| {nvis / 1e6:.1f} M | {args.npix}² | {label} | {t_rf:.1f} | {t_rf / t_ws:.2f}× | {m_rf:.0f} | "
                    f"{m_rf / m_ws:.2f}× | {rf['niter']}/{rf['nmajor']} | {100 * diff:.2f} % |")
    load = max(load, os.getloadavg()[0])
    note = (f"\nSame MS ({args.rmax:g} m cut of ska-low-model, {args.ntimes} times, {args.nchan} channels, "
            f"{args.nsrc} sources, noise {args.noise:g} Jy), {args.threads} threads each, each a separate process: "
            f"wall time end to end (read MS, clean, write FITS) and peak resident memory (the process's VmHWM); flux = "
            f"model summed in 5×5 pixels about each source. Streamed: `radioflow image -niter` (major cycles over "
            f"time chunks of ≤ 128 MiB, Stokes I kept in a scratch directory like WSClean's reordering). "
            f"Load average during the run: up to {load:.1f} on {os.cpu_count()} cores. "
            f"Target (issue 14): wall ≤ 0.45× WSClean, peak memory ≤ 1.5× WSClean's.\n")
    table = HEADER + "\n" + "\n".join(rows)
    print(table if args.header else "\n".join(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    tmp.write_text(table + "\n" + note)
    os.replace(tmp, args.out)
    if worst > 0.01:
        raise SystemExit(f"clean_bench: radioflow and WSClean fluxes differ by {100 * worst:.2f} % (> 1 %).")


if __name__ == "__main__":
    main()
