"""Benchmark: the shipped batch-imaging workflow end to end (wall time, CPU, peak memory).

Runs ``radioflow run src/radioflow/recipes/batch-imaging.yml`` with its defaults (and with
``n_workers=1`` and ``n_workers=2``) in a scratch directory. Peak memory is the largest
resident set of any finished child process (``RUSAGE_CHILDREN``). Target (issue 4): < 60 s on 2 cores.
Writes ``bench/results/workflow.md``.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "src" / "radioflow" / "recipes" / "batch-imaging.yml"


def run(args: list[str], cwd: Path) -> tuple[float, float, float, bool]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "radioflow"), "run", str(RECIPE), *args], cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024, proc.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "workflow.md")
    args = ap.parse_args()
    rows = []
    for label, extra in (("defaults (n_workers=4)", []), ("n_workers=1", ["n_workers=1"]),
                         ("n_workers=2", ["n_workers=2"])):
        work = HERE / "work" / "workflow"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        wall, cpu, rss, ok = run(extra, work)
        rows.append(f"| batch-imaging {label} | {wall:.1f} s | {cpu:.1f} s | {rss:.0f} MB | {'ok' if ok else 'FAILED'} |")
    text = "\n".join(["| workflow (issue 4; target < 60 s) | wall | CPU | peak RSS | status |",
                      "| --- | --- | --- | --- | --- |", *rows]) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
