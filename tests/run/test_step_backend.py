"""``backend`` sections on steps, cabs and nested recipes: where each step runs."""
from __future__ import annotations

import os

import pytest
from recipe_helpers import RECIPES

from radioflow.backends.dask import DaskBackend
from radioflow.backends.local import LocalBackend
from radioflow.errors import ValidationError
from radioflow.run.api import prepare_run
from radioflow.run.runner import Runner

RECIPE = """
_include: {cabs}
mixed:
  inputs:
    workers: int = 2
  outputs:
    a_pid: int
    b_pid: int
    inner_pid: int
    local_pid: int
  aliases:
    a_pid: a.pid
    b_pid: b.pid
    inner_pid: nested.inner_pid
    local_pid: nested.local_pid
  steps:
    a:
      cab: square
      params: {{x: 2, out: a.txt}}
    b:
      cab: square
      backend:
        select: {engine}
        dask: {{n_workers: 1, threads_per_worker: 1}}
        local: {{max_workers: =recipe.workers}}
      params: {{x: 3, out: b.txt}}
    nested:
      recipe:
        inputs: {{}}
        outputs:
          inner_pid: int
          local_pid: int
        aliases:
          inner_pid: inner.pid
          local_pid: back.pid
        steps:
          inner:
            cab: square
            params: {{x: 4, out: inner.txt}}
          back:
            cab: square
            backend: {{select: local}}
            params: {{x: 5, out: back.txt}}
      backend:
        select: local
        local: {{max_workers: 3}}
"""


def _runner(tmp_path, engine: str, *params: str, backend_name: str | None = None) -> Runner:
    path = tmp_path / "mixed.yml"
    path.write_text(RECIPE.format(cabs=RECIPES / "rf_cabs.yml", engine=engine))
    prep = prepare_run([str(path), *params], workdir=str(tmp_path), config={})
    return Runner(prep.doc, prep.rdef, prep.params, options=prep.options, backend_name=backend_name)


def test_step_backend_options_build_their_own_backend(tmp_path):
    runner = _runner(tmp_path, "local", "workers=5")
    assert runner.run().status == "ok"
    assert isinstance(runner.engines.current, LocalBackend)
    sizes = sorted(b.max_workers for b in runner.engines.step_backends.values())
    # step b: max_workers from the formula; the nested recipe step: 3, inherited by 'inner'
    assert sizes == [3, 5]
    assert (tmp_path / "b.txt").read_text() == "9" and (tmp_path / "inner.txt").read_text() == "16"


def test_a_step_runs_on_dask_while_the_others_stay_local(tmp_path):
    runner = _runner(tmp_path, "dask")
    out = runner.run().outputs
    dask_backends = [b for b in runner.engines.step_backends.values() if isinstance(b, DaskBackend)]
    assert len(dask_backends) == 1
    assert dask_backends[0].client.status in ("closed", "closing")  # closed with the run
    assert out["b_pid"] != os.getpid() == out["a_pid"]  # b ran in the Dask worker process
    assert (tmp_path / "b.txt").read_text() == "9"
    assert isinstance(runner.engines.current, LocalBackend)


def test_command_line_engine_wins_over_step_select(tmp_path):
    runner = _runner(tmp_path, "dask", backend_name="local")
    runner.run()
    assert not any(isinstance(b, DaskBackend) for b in runner.engines.step_backends.values())


def test_step_backend_must_be_a_mapping(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(f"""
_include: {RECIPES / "rf_cabs.yml"}
bad:
  steps:
    a:
      cab: square
      backend: dask
      params: {{x: 2, out: a.txt}}
""")
    prep = prepare_run([str(path)], workdir=str(tmp_path), config={})
    with pytest.raises(ValidationError, match=r"step 'bad.a'.*'backend' must be a mapping"):
        Runner(prep.doc, prep.rdef, prep.params, options=prep.options).run()
