"""Shipped workflows run and are documented by name from any folder once installed."""
from __future__ import annotations

import os
import subprocess
import sys

RADIOFLOW = [sys.executable, "-m", "radioflow"]


def _run(args, cwd):
    return subprocess.run(RADIOFLOW + args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def test_shipped_workflows_by_name_from_another_folder(tmp_path):
    r = _run(["run", "batch-imaging", "--dry-run", "nfreqwin=2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "validation ok" in r.stdout and "combine-model" in r.stdout
    r = _run(["doc", "srcnet-aastar"], tmp_path)
    assert r.returncode == 0 and "srcnet-aastar" in r.stdout
    r = _run(["run", "no-such-workflow"], tmp_path)
    assert r.returncode == 2
    assert "batch-imaging" in r.stderr and "partition-calibrate-image" in r.stderr and "Traceback" not in r.stderr


def test_a_local_file_of_that_name_wins(tmp_path):
    (tmp_path / "batch-imaging").write_text(
        "cabs:\n  hi:\n    command: echo\n    inputs:\n      msg: {dtype: str, policies: {positional: true}}\n"
        "mine:\n  steps:\n    s1: {cab: hi, params: {msg: local-file}}\n")
    r = _run(["run", "batch-imaging", "mine", "--no-report"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "local-file" in r.stdout + r.stderr
