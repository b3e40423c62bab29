"""Per-step wall time of the built-in pre-processing cabs against the real DP3 (PyPI dp3) on one MS
written by ``radioflow simulate`` (~1.8 M visibilities, like issue 12's measurement).

Steps: flag (SumThreshold vs AOFlagger generic-default), average (4 × 4), calibrate (StEFCal
phase vs DDECal scalarphase, against the sky model), subtract (direct Fourier sum vs DP3 predict)
and apply (solutions vs applycal). Every step reads and writes the MS, a fresh copy each run.
Built-in steps run once to warm up (numba kernels compiled); then each side runs ``REPEAT``
times and its best time is reported (timing noise only ever adds).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKY = "name,ra_deg,dec_deg,flux_jy\nfield,0.0,-30.0,2.5\nf2,0.5,-29.6,1.2\nateam,3.0,-28.0,40.0\n"
REPEAT = 3
ATEAM = "name,ra_deg,dec_deg,flux_jy\nateam,3.0,-28.0,40.0\n"


def _timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def main() -> None:
    from radioflow.cabs import calibration, data, dp3, preprocess
    from radioflow.vis.ms import read_ms

    tmp = Path(tempfile.mkdtemp(prefix="rf-prebench-"))
    try:
        (tmp / "sky.csv").write_text(SKY)
        (tmp / "ateam.csv").write_text(ATEAM)
        subprocess.run([sys.executable, "-m", "radioflow", "simulate", "-o", str(tmp / "obs.ms"), "--rmax", "250",
                        "--nchan", "16", "--ntimes", "80", "--sky", str(tmp / "sky.csv"), "--noise-sigma", "0.5"],
                       check=True, capture_output=True)
        ds = read_ms(tmp / "obs.ms", columns=[])
        nvis = ds.sizes["time"] * ds.sizes["baseline"] * ds.sizes["frequency"]

        def fresh(name: str) -> str:
            """A new copy of the MS in an empty folder (no output of an earlier run to replace)."""
            folder = tmp / f"run-{name}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            shutil.copytree(tmp / "obs.ms", folder / name)
            return str(folder / name)

        rows = []
        sky, ateam = str(tmp / "sky.csv"), str(tmp / "ateam.csv")
        builtin = {
            "flag": lambda ms: preprocess.flag(ms),
            "average": lambda ms: preprocess.average(ms, ms[:-3] + "-avg.ms", 4, 4),
            "calibrate": lambda ms: (data.predict_sky(ms, sky),
                                     calibration.gaincal(ms, solutions=ms[:-3] + "-gains.zarr", mode="phase")),
            "subtract": lambda ms: preprocess.subtract(ms, ateam, outcolumn="SUBTRACTED_DATA"),
            "apply": lambda ms: preprocess.apply(ms, str(tmp / "ref-gains.zarr")),
        }
        real = {
            "flag": lambda ms: dp3.aoflagger(ms),
            "average": lambda ms: dp3.averager(ms, ms[:-3] + "-avg.ms", 4, 4),
            "calibrate": lambda ms: dp3.ddecal(ms, sky, ms[:-3] + "-cal.h5"),
            "subtract": lambda ms: dp3.predict(ms, ateam, outcolumn="SUBTRACTED_DATA"),
            "apply": lambda ms: dp3.applycal(ms, str(tmp / "ref-cal.h5")),
        }
        ref = fresh("ref.ms")
        data.predict_sky(ref, sky)
        calibration.gaincal(ref, solutions=str(tmp / "ref-gains.zarr"))
        dp3.ddecal(ref, sky, str(tmp / "ref-cal.h5"))
        for step in builtin:
            _timed(builtin[step], fresh("warm.ms"))
            t_rf = min(_timed(builtin[step], fresh("rf.ms")) for _ in range(REPEAT))
            t_dp3 = min(_timed(real[step], fresh("dp3.ms")) for _ in range(REPEAT))
            rows.append((step, t_rf, t_dp3))
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        start = min(_timed(subprocess.run, [dp3.executable()], env=env, capture_output=True) for _ in range(3))
        lines = [f"Measured on one MS of {nvis / 1e6:.2f} M visibilities (4 correlations), "
                 f"{ds.sizes['baseline']} baselines; wall seconds including MS I/O, best of {REPEAT}. DP3's times include "
                 f"starting it ({Path(dp3.executable()).name} alone: {start:.2f} s).", "",
                 "| step | built-in (s) | DP3 (s) | DP3 / built-in |", "|---|---|---|---|"]
        for step, a, b in rows:
            lines.append(f"| {step} | {a:.2f} | {b:.2f} | {b / a:.1f}× |")
        text = "\n".join(lines) + "\n"
        print(text)
        out = HERE / "results" / "preprocess.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
