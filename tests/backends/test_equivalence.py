"""The same scatter (8 items through the real ``execute``) gives bitwise-identical outputs on
every backend: local process pool, Dask LocalCluster, a real `dask scheduler` with two
`dask worker` processes, and the Lithops localhost executor."""
from __future__ import annotations

import hashlib

import pytest
import rf_items

from radioflow.backends import get_backend
from radioflow.backends.base import Invocation

N_ITEMS = 8


def scatter(outdir):
    outdir.mkdir()
    return [Invocation(step=f"compute-{i}", cab=rf_items.COMPUTE_CAB,
                       params={"seed": 1000 + i, "n": 8192, "out": str(outdir / f"part-{i:03d}.bin")},
                       workdir=str(outdir), log_path=str(outdir / f"log-{i}.txt"))
            for i in range(N_ITEMS)]


def run_on(name, config, outdir, backend=None):
    own = backend is None
    backend = backend or get_backend(name, {"backend": {"select": name, name: config}})
    try:
        results = backend.map(scatter(outdir))
    finally:
        if own:
            backend.close()
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.step for r in results] == [f"compute-{i}" for i in range(N_ITEMS)]
    files = {p.name: p.read_bytes() for p in sorted(outdir.glob("part-*.bin"))}
    logs = [(outdir / f"log-{i}.txt").read_text() for i in range(N_ITEMS)]
    return results, files, logs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_on("local", {"max_workers": 2}, tmp_path_factory.mktemp("eq") / "local")


@pytest.mark.parametrize("name", ["dask-local", "dask-external", "lithops"])
def test_scatter_outputs_identical_to_local(name, reference, external_dask, local_dask, tmp_path):
    config = {
        "dask-local": ("dask", {}, local_dask),
        "dask-external": ("dask", {"address": external_dask.address, "show_dashboard": False}),
        "lithops": ("lithops", {"workers": 2}),
    }[name]
    results, files, logs = run_on(config[0], config[1], tmp_path / name, *config[2:])
    ref_results, ref_files, _ = reference
    assert len(files) == N_ITEMS and files == ref_files  # bitwise
    assert [r.outputs["sha256"] for r in results] == [r.outputs["sha256"] for r in ref_results]
    assert [r.outputs["sha256"] for r in results] == [hashlib.sha256(b).hexdigest() for b in files.values()]
    assert all("# finished: ok" in text for text in logs)
