"""Benchmark: the vectorised StEFCal gain solve (:func:`radioflow.science.calibrate.solve_gains`).

Simulates, in memory, point-source visibilities of a random array (3 sources, 1 Jy peak, uv
tracks rotating over the observation), corrupts them with 1 rad rms diagonal phase errors per
60 s interval and adds 0.01 Jy thermal noise (per real/imaginary part, ``WEIGHT = 1/sigma^2``).
Then times ``solve_gains`` (the one pass over the data plus the StEFCal iterations) in the
modes of QuartiCal's ``G`` term of type ``phase`` and ``diag_complex`` on the parallel hands
(``diag_phase`` / ``diag``), per channel (``freq_interval=1``) and ``time_interval=6``, and
a scalar phase-only (``T``-like) solve over the whole band.

Cases: 64 antennas, 1 h at 10 s, 16 channels, 4 correlations (the issue's calibration case),
and 512 stations, 2 min at 10 s, 16 channels, 2 correlations (``--big``; 1 h would need 25 GB).
Times are the median of ``--reps`` runs after a warm-up (numba compiles once, cached on
disk). The phase error is the rms over antennas and intervals after referencing to antenna 0,
divided by the Cramér–Rao bound of that data (inverse Fisher matrix per interval).

Prints a markdown table (``--header`` for the header) and appends it to ``--out``.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--big", action="store_true", help="also run the 512-station case")
    ap.add_argument("--header", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "calibrate.md")
    args = ap.parse_args()
    if args.header:
        print(HEADER)
    rows = run_case(64, 360, 16, 4, args.reps, args.seed)
    if args.big:
        rows += run_case(512, 12, 16, 2, args.reps, args.seed)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = (HEADER + "\n" if not args.out.exists() else "") + "\n".join(rows) + "\n"
        with open(args.out, "a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
