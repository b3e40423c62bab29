"""The console answers its runs page over 1,000 recorded runs in under 200 ms (bench/console_bench.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "console_bench.py"


def test_runs_page_of_1000_runs_under_200_ms(tmp_path):
    out = tmp_path / "console.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--reps", "10", "--out", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in out.read_text().splitlines() if line.startswith("| `GET /` "))
    median_ms = float(re.split(r"\s*\|\s*", row)[2])
    assert median_ms < 200, row
