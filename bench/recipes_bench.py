"""Benchmark: wall time and CPU of ``radioflow run`` (and ``stimela run -b native``) per step.

Both tools run the *same* YAML file (a Stimela2 recipe of N ``echo`` steps), for N = 1 and
N = 100; CPU is the user+system time of the child process tree (``RUSAGE_CHILDREN``), so
it includes Python start-up, validation and every ``echo`` subprocess. The per-step cost is
(CPU(100) - CPU(1)) / 99, which removes the fixed start-up cost. Also measures
``radioflow --help`` wall time (target < 0.3 s).

Writes a markdown table fragment (default ``bench/results/recipes.md``) and prints it.
Stimela is used when ``bench/.venv-stimela/bin/stimela`` exists (``--install-stimela``
creates that venv with ``pip install stimela==2.1.4``) or ``--stimela PATH`` is given.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STIMELA_VENV = HERE / ".venv-stimela"


def recipe_text(nsteps: int) -> str:
    """A Stimela2 recipe of ``nsteps`` trivial echo steps (valid for radioflow and stimela)."""
    lines = [
        "cabs:",
        "  echo:",
        "    command: echo",
        "    inputs:",
        "      msg:",
        "        dtype: str",
        "        policies: {positional: true}",
        f"bench{nsteps}:",
        f"  info: {nsteps} trivial steps",
        "  steps:",
    ]
    for i in range(nsteps):
        lines += [f"    s{i}:", "      cab: echo", "      params:", f"        msg: step-{i}"]
    return "\n".join(lines) + "\n"


def measure(cmd: list[str], cwd: Path, reps: int) -> tuple[float, float]:
    """(min wall seconds, median CPU seconds) of ``cmd`` over ``reps`` runs; raises if it fails."""
    walls, cpus = [], []
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
        walls.append(wall)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return min(walls), statistics.median(cpus)


def install_stimela() -> Path:
    """Create bench/.venv-stimela with stimela 2.1.4 (a separate venv: its pins differ from ours)."""
    if not (STIMELA_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(STIMELA_VENV)], check=True)
    subprocess.run([str(STIMELA_VENV / "bin" / "pip"), "install", "-q", "stimela==2.1.4"], check=True)
    return STIMELA_VENV / "bin" / "stimela"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "recipes.md"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--stimela", default=None, help="stimela executable (default: bench/.venv-stimela/bin/stimela)")
    ap.add_argument("--install-stimela", action="store_true")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 100])
    args = ap.parse_args(argv)

    radioflow = str(Path(sys.executable).parent / "radioflow")
    stimela = args.stimela or str(STIMELA_VENV / "bin" / "stimela")
    if args.install_stimela:
        stimela = str(install_stimela())
    tools = {"radioflow": lambda f, wd: [radioflow, "run", str(f), "-q", "-C", str(wd)],
             "radioflow --no-report": lambda f, wd: [radioflow, "run", str(f), "-q", "-C", str(wd), "--no-report"]}
    if Path(stimela).exists():
        # stimela 2.1.4 spells "-b native" as -N (--native)
        tools["stimela 2.1.4 (native)"] = lambda f, wd: [stimela, "run", "-N", str(f)]

    rows: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        for n in args.steps:
            path = Path(tmp) / f"bench{n}.yml"
            path.write_text(recipe_text(n))
            for tool, cmd in tools.items():
                wd = Path(tmp) / f"{tool.replace(' ', '_')}-{n}"
                wd.mkdir()
                rows[(tool, n)] = measure(cmd(path, wd), wd, args.reps)
        help_wall = min(measure([radioflow, "--help"], Path(tmp), 1)[0] for _ in range(5))

    lo, hi = min(args.steps), max(args.steps)
    lines = ["| tool | steps | wall (s) | CPU (s) | CPU per step (ms) |", "| --- | ---: | ---: | ---: | ---: |"]
    per_step: dict[str, float] = {}
    for tool in tools:
        if hi > lo:
            per_step[tool] = (rows[(tool, hi)][1] - rows[(tool, lo)][1]) / (hi - lo)
        for n in args.steps:
            wall, cpu = rows[(tool, n)]
            ps = f"{per_step[tool] * 1e3:.1f}" if n == hi and tool in per_step else ""
            lines.append(f"| {tool} | {n} | {wall:.2f} | {cpu:.2f} | {ps} |")
    notes = [f"\n`radioflow --help`: {help_wall:.3f} s wall (target < 0.3 s).",
             f"Per-step CPU = (CPU({hi}) - CPU({lo})) / {hi - lo}; best wall and median CPU of {args.reps} runs; "
             f"{os.cpu_count()} CPUs."]
    stimela_ps = next((v for k, v in per_step.items() if not k.startswith("radioflow")), None)
    if stimela_ps is not None:
        for tool in ("radioflow", "radioflow --no-report"):
            notes.append(f"{tool} uses {stimela_ps / per_step[tool]:.1f}x less CPU per step than stimela "
                         "(target >= 20x)." + (" The default writes the run's HTML report (a timeline row "
                                               "per step); stimela writes none." if tool == "radioflow" else ""))
    else:
        notes.append("stimela not installed (run with --install-stimela to compare).")
    text = "\n".join(lines + notes) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(text)
    tmp_out.replace(out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
