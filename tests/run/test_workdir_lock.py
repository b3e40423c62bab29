"""One run at a time per work folder: concurrent runs never mix outputs; a second run stops
naming the running one (or waits with --wait); a stale lock of a dead process is recovered."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

RECIPE = """
cabs:
  sh:
    command: sh
    inputs:
      script: {dtype: str, policies: {positional: true}}
      flag: {dtype: str, default: "-c", policies: {positional_head: true}}
chain:
  inputs:
    tag: str = A
  steps:
    first:
      cab: sh
      params:
        script: "echo {recipe.tag} > a.txt; sleep 1.5"
    second:
      cab: sh
      params:
        script: "cat a.txt > b.txt; sleep 0.5; echo {recipe.tag} >> b.txt; cp b.txt b-{recipe.tag}.txt"
"""


def _start(workdir: Path, tag: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "radioflow", "run", "-q", "-C", str(workdir), *extra,
                             str(workdir / "chain.yml"), f"tag={tag}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})


def _consistent(workdir: Path, *tags: str) -> bool:
    """Each run's product holds its own tag twice (it read only what it wrote itself)."""
    return all((workdir / f"b-{tag}.txt").read_text().split() == [tag, tag] for tag in tags)


@pytest.mark.slow
def test_second_run_stops_naming_the_running_one(tmp_path):
    (tmp_path / "chain.yml").write_text(RECIPE)
    first = _start(tmp_path, "A")
    deadline = time.monotonic() + 60
    while not (tmp_path / ".radioflow" / "run.lock").exists():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    holder = json.loads((tmp_path / ".radioflow" / "run.lock").read_text())
    second = _start(tmp_path, "B")
    _, err = second.communicate(timeout=60)
    assert second.returncode != 0
    text = " ".join(err.split())
    assert f"in use by run {holder['run_id']}" in text and "Traceback" not in err
    assert first.wait(timeout=60) == 0
    assert _consistent(tmp_path, "A") and not (tmp_path / "b-B.txt").exists()
    assert not (tmp_path / ".radioflow" / "run.lock").exists()


@pytest.mark.slow
@pytest.mark.parametrize("wait", [True, False])
def test_concurrent_runs_never_mix_outputs(tmp_path, wait):
    (tmp_path / "chain.yml").write_text(RECIPE)
    procs = {}
    for tag in ("A", "B", "C"):
        procs[tag] = _start(tmp_path, tag, *(["--wait"] if wait else []))
        time.sleep(0.3)
    ok = []
    for tag, p in procs.items():
        _, err = p.communicate(timeout=120)
        if p.returncode == 0:
            ok.append(tag)
        else:
            assert not wait and "is in use by run" in err, err
    assert ok == ["A", "B", "C"] if wait else ok
    assert _consistent(tmp_path, *ok)


@pytest.mark.slow
def test_stale_lock_of_a_killed_run_is_recovered(tmp_path):
    (tmp_path / "chain.yml").write_text(RECIPE)
    first = _start(tmp_path, "A")
    deadline = time.monotonic() + 60
    while not (tmp_path / ".radioflow" / "run.lock").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    holder = json.loads((tmp_path / ".radioflow" / "run.lock").read_text())
    assert holder["host"] == socket.gethostname()
    again = _start(tmp_path, "B")
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert _consistent(tmp_path, "B")
