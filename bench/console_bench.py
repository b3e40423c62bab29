"""Benchmark: the console's runs page over 1,000 recorded runs (issue 16: under 200 ms).

Fills a fresh ``.radioflow/runs.db`` through the runner's own :class:`RunRecords` with
``--runs`` runs of ``--steps`` steps each (a tenth failed, with errors), starts ``radioflow
serve`` on a free loopback port and times ``GET /`` (the list page: 200 newest runs with state,
duration, step counts and report links) and ``GET /api/runs`` over HTTP: median and worst of
``--reps`` requests after one warm-up. Prints a markdown table and writes it to
``bench/results/console.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from radioflow.run.records import RunRecords  # noqa: E402


def fill(workdir: Path, runs: int, steps: int) -> None:
    """``runs`` finished runs of ``steps`` steps each, written like the runner writes them."""
    rec = RunRecords(workdir / ".radioflow" / "runs.db")
    t0 = time.time() - runs * 60
    rec._db.execute("BEGIN")
    for i in range(runs):
        rid = f"20260101-{i:06d}-bench"
        rec.start_run(rid, "batch-imaging", ["batch-imaging.yml"], ["radioflow", "run", "batch-imaging.yml"],
                      str(workdir))
        for j in range(steps):
            sid = rec.start_step(rid, f"batch-imaging.step-{j}", "rf-clean", {"npix": 256, "j": j}, f"h{i}-{j}", None)
            failed = i % 10 == 0 and j == steps - 1
            rec.finish_step(sid, "failed" if failed else "ok", outputs={"peak": 1.0}, returncode=int(failed),
                            error="cab 'rf-clean' raised ValueError: bench" if failed else None,
                            started=t0 + i * 60 + j, finished=t0 + i * 60 + j + 0.5)
        rec._db.execute("UPDATE runs SET status=?, started=?, finished=?, error=? WHERE id=?",
                        ("failed" if i % 10 == 0 else "ok", t0 + i * 60, t0 + i * 60 + steps,
                         "step failed" if i % 10 == 0 else None, rid))
    rec._db.execute("COMMIT")
    rec.close()


def timed(url: str, reps: int) -> tuple[float, float, int]:
    with urllib.request.urlopen(url, timeout=30) as resp:     # warm-up
        size = len(resp.read())
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times), size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "console.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="radioflow-console-bench-") as tmp:
        work = Path(tmp)
        fill(work, args.runs, args.steps)
        env = {"PYTHONPATH": str(HERE.parent / "src")}
        import os

        proc = subprocess.Popen([sys.executable, "-m", "radioflow", "serve", "-C", str(work), "--port", "0"],
                                stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            match = re.search(r"(http://\S+/)", line)
            if match is None:
                raise SystemExit(f"console did not start: {line!r}")
            url = match.group(1)
            rows = [(path, *timed(url + path.lstrip("/"), args.reps)) for path in ("/", "/api/runs")]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    lines = [f"{args.runs} runs × {args.steps} steps in runs.db; `radioflow serve` over HTTP on 127.0.0.1, "
             f"median and worst of {args.reps} requests after a warm-up.", "",
             "| page | median (ms) | worst (ms) | size (KB) | target |", "| --- | ---: | ---: | ---: | --- |"]
    for path, med, worst, size in rows:
        target = "< 200 ms" if path == "/" else ""
        lines.append(f"| `GET {path}` | {med * 1e3:.1f} | {worst * 1e3:.1f} | {size / 1024:.0f} | {target} |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
