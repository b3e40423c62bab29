"""Fuzz of the whole command line: malformed recipes (doc, run -n, run) and bad command lines
(vis, image, simulate, sdp, lake, estimate, runs, report, step, ...) on empty folders, damaged
datasets and absurd numbers.

Each case must end with exit status 1 or 2, within 10 s, with an error message and no traceback
(nor the catch-all "unexpected error" paragraph, which names no file or parameter). The bulk runs
in this process through :func:`radioflow.cli.main` (a SIGALRM per case stops a hang); a seeded
sample runs as real ``python -m radioflow`` subprocesses and must end the same way, which shows the
in-process path is representative. Cases come from tests/cli_fuzz_cases.py with a fixed seed;
``RADIOFLOW_FUZZ_CASE=N`` (recipes) or ``RADIOFLOW_FUZZ_CMD=N`` (command lines) runs one case.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cli_fuzz_cases import base_tree, cmdline_cases, dump, recipe_cases
from radioflow.cli import main

SEED = 20261204
N_RECIPES = 1064
N_RECIPES_FAST = 120
N_CMDLINES = 130
N_SUBPROCESS = 30
TIME_LIMIT = 10.0


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case that runs too long (not an Exception: the CLI must not catch it)."""


@dataclass
class Outcome:
    code: int | str
    out: str
    err: str
    seconds: float


def run_in_process(capfd, args: list[str], cwd: Path) -> Outcome:
    """``radioflow ARGS`` through the real entry point in this process, with a 10 s alarm."""
    def on_alarm(signum, frame):
        raise CaseTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_cwd = os.getcwd()
    capfd.readouterr()
    os.chdir(cwd)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        try:
            code: int | str = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except CaseTimeout:
            code = "timeout"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old_cwd)
    seconds = time.perf_counter() - start
    out, err = capfd.readouterr()
    return Outcome(code, out, err, seconds)


def run_subprocess(args: list[str], cwd: Path) -> Outcome:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(sys.path)}
    start = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "radioflow", *args], cwd=cwd, capture_output=True, text=True,
                           env=env, timeout=TIME_LIMIT + 5)
        code: int | str = r.returncode
        out, err = r.stdout, r.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = "timeout", str(exc.stdout or ""), str(exc.stderr or "")
    return Outcome(code, out, err, time.perf_counter() - start)


def problems_of(o: Outcome, limit: float = TIME_LIMIT) -> list[str]:
    """What is wrong with one case's ending (empty: it ended as a bad input should)."""
    text = o.out + o.err
    found = []
    if o.code not in (1, 2):
        found.append(f"exit {o.code}")
    if "Traceback" in text or "File \"/" in text:
        found.append("traceback")
    if "unexpected error" in text:
        found.append("unexpected error")
    if o.seconds > limit:
        found.append(f"took {o.seconds:.1f} s")
    if o.code in (1, 2) and not o.err.strip():
        found.append("no error message")
    return found


def first_line(text: str) -> str:
    """The first non-empty line, with the program name of a usage line left out."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    return re.sub(r"Usage: \S+( -m \S+)?", "Usage:", line)


def _report(failures: list[str], total: int) -> str:
    return f"{len(failures)} of {total} cases failed:\n" + "\n".join(failures[:25])


# -- fixtures: datasets to damage --------------------------------------------------------------
def _data_column_file(ms: Path) -> tuple[Path, int]:
    """The file holding ms's DATA column and how many of its bytes are data (tiles are padded)."""
    import casacore.tables as ct

    with ct.table(str(ms), ack=False) as t:
        manager = next(dm for dm in t.getdminfo().values() if "DATA" in dm["COLUMNS"])
        nbytes = t.nrows() * int(np.prod(t.getcell("DATA", 0).shape)) * 8
    return ms / f"table.f{manager['SEQNR']}_TSM0", nbytes


@pytest.fixture(scope="module")
def fuzz_paths(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzzdata")
    good_ms, good_zarr = root / "good.ms", root / "good.zarr"
    r = subprocess.run([sys.executable, "-m", "radioflow", "simulate", "-o", str(good_ms), "--rmax", "300",
                        "--nchan", "2", "--ntimes", "2"], capture_output=True, text=True, cwd=root,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "radioflow", "vis", "convert", str(good_ms), str(good_zarr), "-q"],
                       capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    (root / "empty").mkdir()
    (root / "bad.ms").mkdir()
    (root / "bad.ms" / "table.dat").write_bytes(b"\x00garbage" * 64)
    trunc = root / "trunc.ms"
    shutil.copytree(good_ms, trunc)
    data_file, data_bytes = _data_column_file(trunc)
    data_file.write_bytes(data_file.read_bytes()[: data_bytes // 3])
    noant = root / "noant.ms"
    shutil.copytree(good_ms, noant)
    shutil.rmtree(noant / "ANTENNA")
    damaged = root / "damaged.zarr"
    shutil.copytree(good_zarr, damaged)
    chunks = sorted(p for p in damaged.rglob("VISIBILITY/c/*") if p.is_file())
    chunks = chunks or sorted(p for p in damaged.rglob("VISIBILITY/c/**/*") if p.is_file())
    assert chunks
    chunks[0].unlink()
    meta = root / "meta.zarr"
    shutil.copytree(good_zarr, meta)
    (meta / "zarr.json").write_text("{not json")
    (root / "not.zarr").write_text("a file, not a store")
    (root / "bad.csv").write_text("name,ra_deg\n\x00,abc,,,\n")
    (root / "bad.json").write_text("{not json")
    (root / "empty.json").write_text("{}")
    (root / "list.json").write_text("[1, 2]")
    (root / "deep.json").write_text("[" * 100000 + "]" * 100000)
    (root / "bad.yml").write_text("r: [\n")
    (root / "good.yml").write_text(dump(base_tree()))
    (root / "afile").write_text("a file, so nothing can be written beneath it")
    return {
        "good_ms": str(good_ms), "good_zarr": str(good_zarr), "empty": str(root / "empty"),
        "bad_ms": str(root / "bad.ms"), "trunc_ms": str(trunc), "noant_ms": str(noant),
        "damaged_zarr": str(damaged), "damaged_zarr_meta": str(meta), "notzarr": str(root / "not.zarr"),
        "missing": str(root / "nothere.ms"), "bad_csv": str(root / "bad.csv"), "bad_json": str(root / "bad.json"),
        "empty_json": str(root / "empty.json"), "list_json": str(root / "list.json"),
        "deep_json": str(root / "deep.json"), "bad_recipe": str(root / "bad.yml"),
        "good_recipe": str(root / "good.yml"), "unwritable": str(root / "afile"),
    }


def _recipe_case_args(case, tmp: Path) -> list[str]:
    path = tmp / f"case{case.index}.yml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text)
    work = tmp / f"w{case.index}"
    return case.args(str(path), str(work), random.Random(f"{SEED}-args-{case.index}"))


def _selected(env: str, cases: list) -> list:
    one = os.environ.get(env)
    return [cases[int(one)]] if one else cases


def _fuzz_recipes(capfd, tmp_path, n: int) -> None:
    cases = _selected("RADIOFLOW_FUZZ_CASE", recipe_cases(n, SEED))
    failures, slowest = [], 0.0
    start = time.perf_counter()
    for case in cases:
        args = _recipe_case_args(case, tmp_path)
        o = run_in_process(capfd, args, tmp_path)
        slowest = max(slowest, o.seconds)
        bad = problems_of(o)
        if bad:
            failures.append(f"case {case.index} ({case.kind}, {case.level}): {', '.join(bad)}: "
                            f"radioflow {' '.join(a[:60] for a in args)} -> {first_line(o.err or o.out)[:300]}")
    print(f"{len(cases)} recipes in {time.perf_counter() - start:.1f} s, slowest {slowest:.2f} s")
    assert not failures, _report(failures, len(cases))


def test_fuzz_malformed_recipes_fast(capfd, tmp_path):
    """The first 120 generated recipes (every mutation kind several times) in the fast suite."""
    _fuzz_recipes(capfd, tmp_path, N_RECIPES_FAST)


@pytest.mark.slow
def test_fuzz_malformed_recipes_all(capfd, tmp_path):
    """All 1,064 generated malformed recipes through doc / run -n / run."""
    _fuzz_recipes(capfd, tmp_path, N_RECIPES)


@pytest.mark.slow
def test_fuzz_bad_command_lines(capfd, tmp_path, fuzz_paths):
    cases = _selected("RADIOFLOW_FUZZ_CMD", cmdline_cases(N_CMDLINES, SEED, fuzz_paths))
    assert len(cases) >= 100 or os.environ.get("RADIOFLOW_FUZZ_CMD")
    failures, slowest = [], 0.0
    start = time.perf_counter()
    for index, template, args in cases:
        cwd = tmp_path / f"c{index}"
        cwd.mkdir()
        o = run_in_process(capfd, args, cwd)
        slowest = max(slowest, o.seconds)
        bad = problems_of(o)
        if bad:
            failures.append(f"cmd {index} [{template}]: {', '.join(bad)}: radioflow {' '.join(a[:60] for a in args)}"
                            f" -> {first_line(o.err or o.out)[:300]}")
    print(f"{len(cases)} command lines in {time.perf_counter() - start:.1f} s, slowest {slowest:.2f} s")
    assert not failures, _report(failures, len(cases))
    for name in ("good.ms", "good.zarr"):         # nothing above may have replaced the good datasets
        assert (Path(fuzz_paths["empty"]).parent / name).is_dir()


@pytest.mark.slow
def test_subprocess_sample_ends_like_in_process(capfd, tmp_path, fuzz_paths):
    """30 cases drawn from both pools, as real processes: same exit status and first error line
    as in this process, no traceback, within the time limit (plus interpreter start)."""
    rng = random.Random(SEED)
    recipes = rng.sample(recipe_cases(N_RECIPES, SEED), N_SUBPROCESS // 2)
    cmds = rng.sample(cmdline_cases(N_CMDLINES, SEED, fuzz_paths), N_SUBPROCESS - len(recipes))
    failures = []
    jobs = [(f"case {c.index} ({c.kind})", _recipe_case_args(c, tmp_path), tmp_path) for c in recipes]
    for index, template, args in cmds:
        cwd = tmp_path / f"c{index}"
        cwd.mkdir(exist_ok=True)
        jobs.append((f"cmd {index} [{template}]", args, cwd))
    for label, args, cwd in jobs:
        for work in cwd.glob("w*"):
            shutil.rmtree(work, ignore_errors=True)
        inproc = run_in_process(capfd, args, cwd)
        for work in cwd.glob("w*"):
            shutil.rmtree(work, ignore_errors=True)
        sub = run_subprocess(args, cwd)
        bad = problems_of(sub, TIME_LIMIT + 5)
        if sub.code != inproc.code:
            bad.append(f"exit {sub.code} as a process, {inproc.code} in process")
        if first_line(sub.err)[:80] != first_line(inproc.err)[:80]:
            bad.append(f"first error line differs: {first_line(sub.err)[:120]!r} vs {first_line(inproc.err)[:120]!r}")
        if bad:
            failures.append(f"{label}: {', '.join(bad)}: radioflow {' '.join(a[:60] for a in args)}")
    assert not failures, _report(failures, len(jobs))
