"""Chaos: a small batch-imaging run SIGKILLed at 20 seeded moments, resumed after each kill,
ends with products bit-identical to an uninterrupted run's, no leftovers, and run records in
which no step ever ran twice at once.

The kill moments are drawn (fixed seed) across the duration of the uninterrupted run, measured
first. A resumed run that finishes before its kill moment completes that attempt; the next kill
then starts a fresh attempt in a new work folder, so all 20 kills interrupt real work.

Every product file is compared byte for byte. The one exception is casacore's own index file of
IncrementalStMan columns (``table.f0i``), whose padding bytes casacore leaves uninitialised: it
differs between two uninterrupted runs too, so there the columns' values are compared instead.
"""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

RECIPE = Path(__file__).resolve().parents[2] / "src" / "radioflow" / "recipes" / "batch-imaging.yml"
ARGS = ["-b", "local", "run", str(RECIPE), "nfreqwin=1", "nmajor=1", "niter=100", "n_workers=1", "npix=64",
        "cell=180", "--no-report", "-q"]
KILLS = 20
SEED = 1313


def _start(cwd: Path, resume: bool) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "radioflow", *ARGS, *(["--resume"] if resume else [])],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _same_ism_table(a: Path, b: Path) -> bool:
    """Two casacore tables (directories of an ``.f0i`` file) with equal column values."""
    from casacore import tables as ct

    with ct.table(str(a.parent), ack=False) as ta, ct.table(str(b.parent), ack=False) as tb:
        if ta.colnames() != tb.colnames() or ta.nrows() != tb.nrows():
            return False
        for col in ta.colnames():
            if ta.iscelldefined(col, 0) if ta.nrows() else False:
                if not np.array_equal(np.asarray(ta.getcol(col)), np.asarray(tb.getcol(col))):
                    return False
    return True


def _compare(ref: Path, got: Path) -> list[str]:
    a, b = _files(ref), _files(got)
    problems = []
    if set(a) != set(b):
        problems.append(f"files only in the reference: {sorted(set(a) - set(b))[:10]}; "
                        f"only after the kills: {sorted(set(b) - set(a))[:10]}")
    for name in sorted(set(a) & set(b)):
        if a[name].read_bytes() == b[name].read_bytes():
            continue
        if a[name].name == "table.f0i" and _same_ism_table(a[name], b[name]):
            continue
        problems.append(f"{name} differs")
    return problems


def _no_overlapping_steps(db_path: Path) -> list[str]:
    """No step (by name) has two records whose running times overlap, across all runs."""
    db = sqlite3.connect(db_path)
    runs = {rid: (started, finished) for rid, started, finished in db.execute("SELECT id, started, finished FROM runs")}
    rows = list(db.execute("SELECT fqname, run_id, started, finished FROM steps WHERE started IS NOT NULL "
                           "ORDER BY started"))
    db.close()
    run_starts = sorted(s for s, _ in runs.values())
    problems, by_name = [], {}
    for fqname, run_id, started, finished in rows:
        if finished is None:     # killed with its run: it ran at most until the next run started
            finished = next((s for s in run_starts if s > runs[run_id][0]), float("inf"))
        by_name.setdefault(fqname, []).append((started, finished, run_id))
    for fqname, spans in by_name.items():
        for (_, f1, r1), (s2, _, r2) in zip(spans, spans[1:]):
            if s2 < f1:
                problems.append(f"{fqname}: run {r2} started it at {s2:.2f} while run {r1} ran it until {f1:.2f}")
    return problems


@pytest.mark.slow
def test_sigkill_and_resume_twenty_times_gives_identical_products(tmp_path):
    ref = tmp_path / "reference"
    ref.mkdir()
    _finish(_start(ref, resume=False))          # warms numba's cache, so the timed run is representative
    (tmp_path / "timed").mkdir()
    started = time.monotonic()
    _finish(_start(tmp_path / "timed", resume=False))
    duration = time.monotonic() - started
    assert not _compare(ref / "radioflow-data", tmp_path / "timed" / "radioflow-data")  # deterministic to begin with

    rng = random.Random(SEED)
    moments = [rng.uniform(0.1, 0.95) * duration for _ in range(KILLS)]
    attempts: list[Path] = []
    kills = 0
    proc: subprocess.Popen | None = None
    while kills < KILLS:
        if not attempts or proc is None:
            attempts.append(tmp_path / f"chaos-{len(attempts)}")
            attempts[-1].mkdir()
            resume = False
        else:
            resume = True
        proc = _start(attempts[-1], resume=resume)
        try:
            proc.wait(timeout=moments[kills])
            _finish(proc)
            proc = None                         # finished before its kill moment: a fresh attempt next
            continue
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
    _finish(_start(attempts[-1], resume=True))
    assert len(attempts) <= KILLS

    for work in attempts:
        data = work / "radioflow-data"
        if not data.exists() and work is not attempts[-1]:
            continue
        assert not _compare(ref / "radioflow-data", data), (work.name, _compare(ref / "radioflow-data", data))
        leftovers = [p for p in work.rglob("*") if ".old-" in p.name or p.name.endswith((".tmp", ".partial"))
                     or ".tmp-" in p.name]
        assert not leftovers, leftovers[:10]
        assert not _no_overlapping_steps(work / ".radioflow" / "runs.db")
        db = sqlite3.connect(work / ".radioflow" / "runs.db")
        last = db.execute("SELECT status FROM runs ORDER BY started DESC LIMIT 1").fetchone()[0]
        db.close()
        assert last == "ok"
