"""``make bench``: run every benchmark and gather their tables into ``bench/results.md``.

``python bench/run.py imaging_bench.py`` reruns only the named scripts and reuses the others' tables.

Each benchmark is a script in ``bench/`` that prints and writes a markdown table under
``bench/results/``. A benchmark that fails is reported as such; the others still run.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("Imaging and simulation (issue 2)", "imaging_bench.py", [], "imaging.md"),
    ("Recipe runner vs Stimela (issue 3)", "recipes_bench.py", ["--install-stimela"], "recipes.md"),
    ("Batch-imaging workflow (issue 4)", "workflow_bench.py", [], "workflow.md"),
    ("CLEAN vs WSClean (issue 4)", "clean_bench.py", ["--header"], "clean.md"),
    ("Calibration solve (issue 4)", "calibrate_bench.py", ["--header", "--install-quartical"], "calibrate.md"),
    ("MS <-> Zarr conversion (issue 5)", "convert_bench.py", [], "convert.md"),
    ("Backend scatter overhead (issue 6)", "backends_bench.py", [], "backends.md"),
    ("Streamed imaging memory and Dask scaling (issue 14)", "streaming_bench.py", [], "streaming.md"),
    ("SDP control plane on SQLite and etcd (issue 10)", "sdp_bench.py", [], "sdp.md"),
    ("Datalake ingestion (issue 11)", "lake_bench.py", [], "lake.md"),
    ("Web console runs page (issue 16)", "console_bench.py", [], "console.md"),
    ("Pre-processing: built-in vs DP3 (issue 12)", "preprocess_bench.py", [], "preprocess.md"),
    ("Serverless pipeline: built-in vs DP3 + WSClean, Lithops overhead (issue 12)", "pipeline_bench.py", [],
     "pipeline.md"),
]


def main() -> int:
    only = sys.argv[1:]  # script names to (re)run; the other benchmarks' last tables are reused
    sections = [f"# radioflow benchmarks\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} on this machine "
                f"(`make bench`).\n"]
    for title, script, args, result in BENCHES:
        path = HERE / script
        out = HERE / "results" / result
        if not path.exists():
            sections.append(f"## {title}\n\n(not available: {script} missing)\n")
            continue
        if only and script not in only:
            body = out.read_text() if out.exists() else "(not run)\n"
            sections.append(f"## {title}\n\n{body}\n_{script}: the table of its last run (not rerun now)_\n")
            continue
        out.unlink(missing_ok=True)
        print(f"== {title}: {script}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(path), *args], cwd=HERE.parent, text=True,
                              capture_output=True)
        took = time.perf_counter() - t0
        if proc.returncode == 0 and out.exists():
            body = out.read_text()
        else:
            body = f"FAILED (exit {proc.returncode}):\n\n```\n{(proc.stderr or proc.stdout)[-2000:]}\n```\n"
        print(body, flush=True)
        sections.append(f"## {title}\n\n{body}\n_{script}, {took:.0f} s_\n")
    (HERE / "results.md").write_text("\n".join(sections))
    print(f"wrote {HERE / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
