"""Whole serverless pipeline (issue 12): built-in steps vs the real tools (DP3 + WSClean), and the
Lithops map overhead, on one MS written by ``radioflow simulate`` (the preprocess bench's size).

Three runs of ``serverless-pipeline.yml`` (nparts=4) on the same MS, one after another: built-in
on the local backend, DP3 + WSClean on the local backend, built-in on Lithops (localhost compute,
the same machine). Lithops' overhead is the difference of the two built-in runs, per map task.
Writes ``bench/results/pipeline.md``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "src" / "radioflow" / "recipes" / "serverless-pipeline.yml"
SKY = "name,ra_deg,dec_deg,flux_jy\nfield,0.0,-30.0,2.5\nf2,0.5,-29.6,1.2\nateam,3.0,-28.0,40.0\n"
ATEAM = "name,ra_deg,dec_deg,flux_jy\nateam,3.0,-28.0,40.0\n"
NPARTS = 4


def _run(tmp: Path, name: str, *args: str) -> tuple[float, dict[str, float]]:
    cwd = tmp / name
    cwd.mkdir()
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(HERE.parent / "src")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "radioflow", "run", str(RECIPE), f"ms={tmp / 'obs.ms'}",
                           f"sky={tmp / 'sky.csv'}", f"ateam={tmp / 'ateam.csv'}", f"nparts={NPARTS}", "solint=2",
                           "npix=256", "cell=60", "niter=1000", *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    steps: dict[str, float] = {}
    for label, secs in re.findall(r"^ok\s+serverless-pipeline\.([\w.-]+)\s+([\d.]+) s$", proc.stdout, re.M):
        steps[label] = float(secs)
    return wall, steps


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rf-pipebench-"))
    try:
        (tmp / "sky.csv").write_text(SKY)
        (tmp / "ateam.csv").write_text(ATEAM)
        subprocess.run([sys.executable, "-m", "radioflow", "simulate", "-o", str(tmp / "obs.ms"), "--rmax", "250",
                        "--nchan", "16", "--ntimes", "80", "--sky", str(tmp / "sky.csv"), "--noise-sigma", "0.5"],
                       check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")})
        local, lsteps = _run(tmp, "builtin", "tools=builtin")
        real, rsteps = _run(tmp, "dp3", "tools=dp3")
        lith, _ = _run(tmp, "lithops", "tools=builtin", "-b", "lithops")
        image_rf, image_ws = lsteps.get("image", float("nan")), rsteps.get("wsclean", float("nan"))
        lines = [f"One MS of 1.83 M visibilities split into {NPARTS} time partitions; whole `radioflow run` wall "
                 "time (process start, partitioning, the per-partition map, joint imaging at 256², report).", "",
                 "| run | wall (s) | joint imaging (s) |", "|---|---|---|",
                 f"| built-in, local backend | {local:.1f} | {image_rf:.1f} (radioflow) |",
                 f"| DP3 + WSClean, local backend | {real:.1f} | {image_ws:.1f} (WSClean) |",
                 f"| built-in, Lithops (localhost) | {lith:.1f} | |", "",
                 f"Whole pipeline: DP3 + WSClean / built-in = {real / local:.2f}×. Lithops map overhead over the "
                 f"local backend: {lith - local:+.1f} s for the run, {(lith - local) / NPARTS:+.2f} s per map task."]
        text = "\n".join(lines) + "\n"
        print(text)
        out = HERE / "results" / "pipeline.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
