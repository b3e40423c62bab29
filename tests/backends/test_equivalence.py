"""One scatter recipe over 8 partitions, run with ``radioflow run -b NAME``, writes bitwise
identical outputs on every backend: local process pool, Dask LocalCluster, a real
`dask scheduler` with two `dask worker` processes, and the Lithops localhost executor."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml

from radioflow.cli import main

pytestmark = pytest.mark.timeout(300)  # an engine hang fails the test instead of the run

N_PARTS = 8
RECIPE = f"""\
cabs:
  compute:
    info: seeded FFT power spectrum of one partition
    flavour: python
    command: rf_items.compute
    inputs:
      seed: int *
      n: int = 8192
    outputs:
      out: File *
      sha256: str
      pid: int

scatter-parts:
  info: one compute step per partition, all in parallel
  inputs:
    seeds: List[int] = {list(range(100, 100 + N_PARTS))}
  outputs:
    shas: List[str]
    pids: List[int]
  for_loop:
    var: seed
    over: seeds
    scatter: -1
    output_elements: [shas, pids]
  aliases:
    shas: part.sha256
    pids: part.pid
  steps:
    part:
      cab: compute
      params:
        seed: =recipe.seed
        out: part-{{recipe.seed}}.bin
"""


def run_recipe(workdir, backend, config):
    workdir.mkdir()
    (workdir / "scatter.yml").write_text(RECIPE)
    (workdir / "radioflow.yml").write_text(yaml.safe_dump({"backend": config}))
    code = main(["run", str(workdir / "scatter.yml"), "-b", backend, "-C", str(workdir), "-q"])
    assert code == 0, f"radioflow run -b {backend} failed (see captured output)"
    files = {p.name: p.read_bytes() for p in sorted(workdir.glob("part-*.bin"))}
    assert len(files) == N_PARTS
    return files


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    return run_recipe(tmp_path_factory.mktemp("eq") / "local", "local", {"local": {"max_workers": 2}})


@pytest.mark.parametrize("name", ["dask-localcluster", "dask-scheduler", "lithops"])
def test_scatter_recipe_identical_on_every_backend(name, local_files, external_dask, tmp_path):
    backend, config = {
        "dask-localcluster": ("dask", {"dask": {"n_workers": 2, "show_dashboard": False}}),
        "dask-scheduler": ("dask", {"dask": {"address": external_dask.address}}),
        "lithops": ("lithops", {"lithops": {"workers": 2}}),
    }[name]
    files = run_recipe(tmp_path / name, backend, config)
    assert files == local_files  # bitwise, every partition
    want = {f"part-{s}.bin" for s in range(100, 100 + N_PARTS)}
    assert set(files) == want
    for data in files.values():
        assert data.endswith(bytes([10]) * 64) and len(data) == (8192 // 2 + 1) * 8 + 64
    db_rows = _step_outputs(tmp_path / name)
    assert len(db_rows) == N_PARTS and os.getpid() not in {r["pid"] for r in db_rows}
    assert sorted(r["sha256"] for r in db_rows) == sorted(hashlib.sha256(b).hexdigest() for b in files.values())


def _step_outputs(workdir):
    import sqlite3

    db = sqlite3.connect(workdir / ".radioflow" / "runs.db")
    rows = [json.loads(r[0]) for r in db.execute("SELECT outputs FROM steps WHERE fqname LIKE '%part%'")]
    db.close()
    return [r for r in rows if "sha256" in r]
