"""Benchmark: the vectorised StEFCal gain solve (:func:`radioflow.science.calibrate.solve_gains`).

Simulates, in memory, point-source visibilities of a random array (3 sources, 1 Jy peak, uv
tracks rotating over the observation), corrupts them with 1 rad rms diagonal phase errors per
60 s interval and adds 0.01 Jy thermal noise (per real/imaginary part, ``WEIGHT = 1/sigma^2``).
Then times ``solve_gains`` (the one pass over the data plus the StEFCal iterations) in the
modes of QuartiCal's ``G`` term of type ``phase`` and ``diag_complex`` on the parallel hands
(``diag_phase`` / ``diag``), per channel (``freq_interval=1``) and ``time_interval=6``, and
a scalar phase-only (``T``-like) solve over the whole band.

Cases: 64 antennas, 1 h at 10 s, 16 channels, 4 correlations (the issue's calibration case),
and 512 stations, 2 min at 10 s, 16 channels, 2 correlations (1 h would need 25 GB). Times
are the median of ``--reps`` runs after a warm-up (numba compiles once, cached on disk). The
phase error is the rms over antennas and intervals after referencing to antenna 0, divided by
the Cramér–Rao bound of that data (inverse Fisher matrix per interval).

End to end (skipped with ``--quick``): the 64-station case is simulated once as an MS under
``--workdir`` (SKA-Low model core, 5 point sources, ``MODEL_DATA`` = truth); radioflow reads
it, solves and writes the solutions Zarr; QuartiCal 0.2.7 (``goquartical`` from
``bench/.venv-quartical``, made by ``--install-quartical``) solves the same MS with a ``G``
term of type ``phase`` and ``diag_complex``, ``time_interval 6``, ``time_chunk 60``,
``select_corr [0,3]``. Both are timed wall-clock and scored against the same bound.

Prints markdown tables (``--header`` for the first header) and appends them to ``--out``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from radioflow.science.calibrate import solve_gains  # noqa: E402
from radioflow.science.corrupt import apply_gains, random_gains  # noqa: E402
from radioflow.vis.schema import baseline_pairs  # noqa: E402

HEADER = ("| stations | time × baseline × chan × corr | solution intervals | mode | solve (s) | "
          "Mvis/s | iterations (max) | phase error / CRB |\n|---|---|---|---|---|---|---|---|")


def simulate(nant: int, ntime: int, nchan: int, ncorr: int, sigma: float, seed: int):
    """Point-source model, corrupted + noisy data, weights, true gains (all in memory)."""
    rng = np.random.default_rng(seed)
    a1, a2 = baseline_pairs(nant)
    pos = rng.normal(0.0, 400.0, (nant, 2))
    u = (pos[a2] - pos[a1]) / 3.0
    l, m = rng.uniform(-0.03, 0.03, (2, 3))
    flux = np.array([1.0, 0.5, 0.3])
    rot = np.linspace(0.0, 0.26 * ntime / 360, ntime)[:, None]  # ~15 deg per hour
    uu = (u[:, 0] * np.cos(rot) - u[:, 1] * np.sin(rot)).astype(np.float32)
    vv = (u[:, 0] * np.sin(rot) + u[:, 1] * np.cos(rot)).astype(np.float32)
    scale = (1.0 + 0.01 * np.arange(nchan)).astype(np.float32)
    model = np.zeros((ntime, a1.size, nchan), np.complex64)
    for s, ls, ms in zip(flux, l, m):  # three sources: a loop of three array expressions
        model += s * np.exp(2j * np.pi * (uu * ls + vv * ms)[..., None] * scale).astype(np.complex64)
    corr = np.array([1.0, 0.0, 0.0, 1.0] if ncorr == 4 else [1.0, 1.0], np.float32)
    model = np.ascontiguousarray(model[..., None] * corr)
    gains = random_gains(nant, ntime, nchan, phase_rms=1.0, time_interval=6, freq_interval=1, npol=2, seed=seed + 1)
    vis = apply_gains(model, gains, a1, a2)
    vis += (sigma * (rng.standard_normal(vis.shape, np.float32)
                     + 1j * rng.standard_normal(vis.shape, np.float32))).astype(np.complex64)
    weight = np.full(vis.shape, 1.0 / sigma**2, np.float32)
    return vis, model, weight, a1, a2, gains[::6]


def crb_rms(model, weight, a1, a2, nant, ti, ncorr) -> float:
    """Cramér–Rao bound on the referenced diagonal phases: sqrt(mean diag(F_red^-1))."""
    hands = [0, 3] if ncorr == 4 else [0, 1]
    var = []
    for c in hands:
        W = (weight[..., c] * np.abs(model[..., c]) ** 2).astype(np.float64)  # (t, bl, chan)
        W = np.add.reduceat(W, np.arange(0, W.shape[0], ti), axis=0)  # (interval, bl, chan)
        W = W.transpose(0, 2, 1).reshape(-1, a1.size)
        F = np.zeros((W.shape[0], nant, nant))
        F[:, a1, a2] = -W
        F[:, a2, a1] = -W
        F[:, np.arange(nant), np.arange(nant)] = -F.sum(2)
        var.append(np.diagonal(np.linalg.inv(F[:, 1:, 1:]), axis1=1, axis2=2))
    return float(np.sqrt(np.mean(var)))


def run_case(nant: int, ntime: int, nchan: int, ncorr: int, reps: int, seed: int) -> list[str]:
    vis, model, weight, a1, a2, true = simulate(nant, ntime, nchan, ncorr, 0.01, seed)
    crb = crb_rms(model, weight, a1, a2, nant, 6, ncorr)
    rows = []
    for mode, fi in (("diag_phase", 1), ("diag", 1), ("phase", None)):
        opts = dict(time_interval=6, freq_interval=fi, mode=mode)
        solve_gains(vis[:6], model[:6], weight[:6], None, a1, a2, nant, **opts)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            sol = solve_gains(vis, model, weight, None, a1, a2, nant, **opts)
            times.append(time.perf_counter() - t0)
        if fi == 1:
            ref = true[:, :1]
            err = np.angle(sol.gains * np.conj(true) * ref / np.abs(ref))[:, 1:]
            ratio = f"{float(np.sqrt(np.mean(err**2))) / crb:.3f}"
        else:
            ratio = "n/a (band-average of per-channel gains)"
        t = statistics.median(times)
        shape = " × ".join(str(n) for n in vis.shape)
        nsol = f"{sol.gains.shape[0]} × {sol.gains.shape[2]} × {sol.gains.shape[3]}"
        rows.append(f"| {nant} | {shape} | {nsol} | {mode} | {t:.3f} | {vis.size / t / 1e6:.0f} | "
                    f"{int(sol.iterations.max())} | {ratio} |")
        print(rows[-1], flush=True)
    return rows


E2E_HEADER = ("| case | tool | term | wall (s) | phase error / CRB |\n|---|---|---|---|---|")


def build_ms(path: Path, seed: int) -> np.ndarray:
    """64 SKA-Low model stations, 1 h at 10 s, 16 channels; MODEL_DATA = truth, DATA corrupted.

    Returns the true diagonal gains per 60 s interval ``(60, 64, 1, 2)`` (same for all channels).
    """
    import math

    from radioflow.science import observation as O
    from radioflow.science import skymodel as S
    from radioflow.science import telescopes as T
    from radioflow.science.corrupt import add_noise, corrupt_dataset
    from radioflow.science.simulate import simulate
    from radioflow.vis.ms import write_ms

    lay = T.load_layout("ska-low-model")
    lay = lay.select(names=list(np.asarray(lay.names)[np.argsort(lay.radius())[:64]]))
    ra0, dec0 = 0.0, math.radians(-30.0)
    obs = O.make_observation(ra=ra0, dec=dec0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=16,
                             start="2025-01-01T00:00:00", duration=3600.0, integration=10.0)
    rng = np.random.default_rng(seed)
    ra, dec = S.lm_to_radec(rng.uniform(-0.05, 0.05, 5), rng.uniform(-0.05, 0.05, 5), ra0, dec0)
    sky = S.SkyModel.from_components(ra, dec, np.array([2.0, 1.0, 0.7, 0.5, 0.3]), ref_freq=1.05e8)
    ds = simulate(lay, obs, sky)
    model = ds["VISIBILITY"]
    ds, gains = corrupt_dataset(ds, phase_rms=1.0, time_interval=6, npol=2, seed=seed + 1)
    ds = add_noise(ds, sigma=0.01, seed=seed + 2)
    ds["MODEL_DATA"] = model
    write_ms(ds, path, overwrite=True)
    np.save(path.with_suffix(".gains.npy"), gains[::6, :, :1])
    return gains[::6, :, :1]


def phase_ratio(gains: np.ndarray, true: np.ndarray, crb: float) -> float:
    """rms phase error (antenna 0 as reference, gains (time, ant, chan, 2)) / CRB."""
    ref = true[:, :1]
    err = np.angle(gains * np.conj(true) * ref / np.abs(ref))[:, 1:]
    return float(np.sqrt(np.mean(err**2))) / crb


def radioflow_e2e(ms: Path, out: Path, mode: str) -> tuple[float, np.ndarray, object]:
    """Read MS (DATA, MODEL_DATA), solve per 60 s × channel, write solutions Zarr: wall time."""
    import shutil

    from radioflow.science.calibrate import solutions_to_dataset
    from radioflow.vis.ms import read_ms

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    # Diagonal terms need only the parallel hands: read just those, as QuartiCal's select_corr=[0,3].
    ds = read_ms(ms, columns=("DATA", "MODEL_DATA"), correlations=["XX", "YY"])
    sol = solve_gains(ds["VISIBILITY"].values, ds["MODEL_DATA"].values, ds["WEIGHT"].values, ds["FLAG"].values,
                      ds["baseline_antenna1"].values, ds["baseline_antenna2"].values, ds.sizes["antenna"],
                      time_interval=6, freq_interval=1, mode=mode)
    solutions_to_dataset(sol, ds["time"].values, ds["frequency"].values, ds["antenna_name"].values).to_zarr(out)
    return time.perf_counter() - t0, sol.gains, ds


def quartical_e2e(ms: Path, out: Path, term: str) -> tuple[float, np.ndarray] | None:
    """goquartical (bench/.venv-quartical) with a G term of ``term``; wall time and gains."""
    import shutil
    import subprocess

    exe = HERE / ".venv-quartical" / "bin" / "goquartical"
    if not exe.exists():
        return None
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(exe), f"input_ms.path={ms}", "input_ms.data_column=DATA", "input_ms.weight_column=WEIGHT",
           "input_model.recipe=MODEL_DATA", "input_ms.time_chunk=60", "input_ms.freq_chunk=0",
           "input_ms.select_corr=[0,3]", "solver.terms=[G]", "solver.iter_recipe=[100]",
           f"G.type={term}", "G.time_interval=6", "G.freq_interval=1",
           f"output.gain_directory={out / 'gains.qc'}", f"output.log_directory={out / 'logs'}",
           "output.overwrite=true", "output.flags=false", "dask.threads=2"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        return None
    import xarray as xr

    g = xr.open_zarr(out / "gains.qc" / "G" / "G_0").load()
    gains = g["gains"].transpose("gain_time", "antenna", "gain_freq", "direction", "correlation").values[..., 0, :]
    return wall, gains


def run_e2e(seed: int, workdir: Path) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    ms = workdir / "calibrate64.ms"
    true = np.load(ms.with_suffix(".gains.npy")) if ms.exists() else build_ms(ms, seed)
    rows = []
    for mode, term in (("diag_phase", "phase"), ("diag", "diag_complex")):
        radioflow_e2e(ms, workdir / "warm.zarr", mode)  # warm the page cache and numba
        wall, gains, ds = radioflow_e2e(ms, workdir / "radioflow.zarr", mode)
        if mode == "diag_phase":
            v = ds["MODEL_DATA"].values
            w = ds["WEIGHT"].values
            a1, a2 = ds["baseline_antenna1"].values, ds["baseline_antenna2"].values
            crb = crb_rms(v, w, a1, a2, ds.sizes["antenna"], 6, v.shape[3])
        rows.append(f"| 64 st, 360 × 2016 × 16 × 4 MS | radioflow | {mode} | {wall:.2f} | {phase_ratio(gains, true, crb):.3f} |")
        print(rows[-1], flush=True)
        qc = quartical_e2e(ms, workdir / f"quartical-{term}", term)
        if qc is not None:
            rows.append(f"| 64 st, 360 × 2016 × 16 × 4 MS | QuartiCal 0.2.7 | G {term} | {qc[0]:.2f} | "
                        f"{phase_ratio(qc[1], true, crb):.3f} |")
            print(rows[-1], flush=True)
    return rows


def install_quartical() -> None:
    """Create bench/.venv-quartical with QuartiCal 0.2.7 (its own venv: it pins old dask/zarr)."""
    import subprocess

    venv = HERE / ".venv-quartical"
    if (venv / "bin" / "goquartical").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "quartical==0.2.7"], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="only the in-memory 64-station solve")
    ap.add_argument("--install-quartical", action="store_true",
                    help="create bench/.venv-quartical (pip install quartical==0.2.7) if missing")
    ap.add_argument("--header", action="store_true")
    ap.add_argument("--workdir", type=Path, default=HERE / "work" / "calibrate")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "calibrate.md")
    args = ap.parse_args()
    if args.header:
        print(HEADER)
    rows = run_case(64, 360, 16, 4, args.reps, args.seed)
    if not args.quick:
        rows += run_case(512, 12, 16, 2, args.reps, args.seed)
        if args.install_quartical:
            install_quartical()
        print(E2E_HEADER)
        rows += ["", E2E_HEADER] + run_e2e(args.seed, args.workdir)
        if not (HERE / ".venv-quartical" / "bin" / "goquartical").exists():
            rows += ["", "QuartiCal not installed: run with --install-quartical to compare."]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = (HEADER + "\n" if not args.out.exists() else "") + "\n".join(rows) + "\n"
        with open(args.out, "a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
