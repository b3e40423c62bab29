"""Benchmark: radioflow CLEAN against WSClean on the same Measurement Set.

Simulates an SKA-Low observation (``ska-low-model`` layout cut at ``--rmax``, hour angles
±1 h, 100–110 MHz, point sources on pixel centres, thermal noise), writes it once as an MS
(kept under ``--workdir`` and reused), then times end to end on the same MS and threads:

* ``wsclean -use-wgridder -niter 10000 -mgain 0.8 -auto-threshold 3 -weight natural`` (its
  default gridder accuracy, 1e-4), writing its FITS images;
* radioflow: read the MS, form Stokes I, :func:`radioflow.science.deconvolve.clean` with the
  same settings (``epsilon=1e-4``), write model / residual / restored / PSF FITS.

It checks both recover the source fluxes (model summed in a 5×5 box) to 1 % of each other and
prints one markdown table row (``--header`` adds the table header); the table, that row and a
note on the set-up are written to ``bench/results/clean.md`` (``--out``).
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
HEADER = ("| visibilities | image | WSClean (s) | radioflow (s) | ratio | WSClean iter/major | "
          "radioflow iter/major | max flux difference |\n|---|---|---|---|---|---|---|---|")


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


def run_wsclean(ms: Path, out: Path, args: argparse.Namespace) -> tuple[float, dict]:
    name = out / "wsclean"
    cmd = ["wsclean", "-quiet", "-j", str(args.threads), "-use-wgridder", "-niter", "10000", "-mgain", "0.8",
           "-auto-threshold", "3", "-weight", "natural", "-size", str(args.npix), str(args.npix),
           "-scale", f"{args.cell_asec}asec", "-name", str(name), str(ms)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=out)
    elapsed = time.perf_counter() - t0
    model, header = read_fits_image(f"{name}-model.fits")
    return elapsed, {"model": model, "niter": int(header.get("WSCMINOR", -1)), "nmajor": int(header.get("WSCMAJOR", -1))}


def run_radioflow(ms: Path, out: Path, args: argparse.Namespace, cell: float) -> tuple[float, dict]:
    t0 = time.perf_counter()
    ds = read_ms(ms)
    vis, wgt, flag = stokes_i(ds)
    wgt = np.where(flag, 0.0, wgt).astype(np.float32)
    res = clean(uvw_rows(ds), ds["frequency"].values, vis, wgt, args.npix, args.npix, cell, cell,
                niter=10000, mgain=0.8, auto_threshold=3.0, epsilon=1e-4, nthreads=args.threads)
    ra0, dec0 = ds.attrs["phase_center"]
    freq = ds["frequency"].values
    write_clean_images(res, str(out / "radioflow"), ra=ra0, dec=dec0, cell_x=cell, cell_y=cell,
                       freq=float(freq.mean()), bandwidth=float(np.ptp(freq) + ds["CHANNEL_WIDTH"].values[0]))
    elapsed = time.perf_counter() - t0
    return elapsed, {"model": res.model, "niter": res.niter, "nmajor": res.nmajor}


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
    args = ap.parse_args()
    if shutil.which("wsclean") is None:
        raise SystemExit("clean_bench: the wsclean binary is not installed (Debian package wsclean).")
    cell = math.radians(args.cell_asec / 3600)
    args.workdir.mkdir(parents=True, exist_ok=True)
    tag = f"r{args.rmax:g}-t{args.ntimes}-c{args.nchan}-n{args.npix}-p{args.cell_asec:g}-s{args.nsrc}-{args.seed}"
    ms = args.workdir / f"bench-{tag}.ms"
    if not (ms / "table.dat").exists():
        print(f"building {ms} ...", file=sys.stderr)
        build_ms(ms, args, cell)
    nvis = read_ms(ms)["VISIBILITY"].shape
    nvis = nvis[0] * nvis[1] * nvis[2]
    out = args.workdir / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    t_ws, ws = run_wsclean(ms, out, args)
    t_rf, rf = run_radioflow(ms, out, args, cell)
    pix, _ = sources(args.npix, args.nsrc, args.seed)
    f_ws, f_rf = box_flux(ws["model"], pix), box_flux(rf["model"], pix)
    diff = float(np.max(np.abs(f_rf - f_ws) / np.abs(f_ws)))
    row = (f"| {nvis / 1e6:.1f} M | {args.npix}² | {t_ws:.1f} | {t_rf:.1f} | {t_rf / t_ws:.2f}× | "
           f"{ws['niter']}/{ws['nmajor']} | {rf['niter']}/{rf['nmajor']} | {100 * diff:.2f} % |")
    note = (f"\nSame MS ({args.rmax:g} m cut of ska-low-model, {args.ntimes} times, {args.nchan} channels, "
            f"{args.nsrc} sources, noise {args.noise:g} Jy), {args.threads} threads each, wall time end to end "
            f"(read MS, clean, write FITS); flux = model summed in 5×5 pixels about each source. "
            f"Load average during the run: {os.getloadavg()[0]:.1f}. Target: ratio ≤ 0.5×.\n")
    if args.header:
        print(HEADER)
    print(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    tmp.write_text(HEADER + "\n" + row + "\n" + note)
    os.replace(tmp, args.out)
    if diff > 0.01:
        raise SystemExit(f"clean_bench: radioflow and WSClean fluxes differ by {100 * diff:.2f} % (> 1 %).")


if __name__ == "__main__":
    main()
