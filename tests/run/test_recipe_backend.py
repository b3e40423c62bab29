"""A recipe's own ``backend`` section picks and sizes the engine from its inputs."""
from __future__ import annotations

import os

from recipe_helpers import RECIPES

from radioflow.backends.local import LocalBackend
from radioflow.run.api import prepare_run
from radioflow.run.runner import Runner

RECIPE = """
_include: {cabs}
sized:
  backend:
    select: local
    local:
      max_workers: =recipe.workers
  inputs:
    workers: int = 3
    values: List[int] = [1, 2, 3, 4]
  outputs:
    squares: List[int]
    pids: List[int]
  for_loop:
    var: x
    over: values
    scatter: -1
    output_elements: [squares, pids]
  aliases:
    squares: sq.value
    pids: sq.pid
  steps:
    sq:
      cab: square
      params:
        x: =recipe.x
        out: sq-{{recipe.x}}.txt
"""


def _run(tmp_path, *params: str, config=None):
    path = tmp_path / "sized.yml"
    path.write_text(RECIPE.format(cabs=RECIPES / "rf_cabs.yml"))
    prep = prepare_run([str(path), *params], workdir=str(tmp_path), config=config or {})
    runner = Runner(prep.doc, prep.rdef, prep.params, options=prep.options)
    outcome = runner.run()
    return runner, outcome


def test_recipe_backend_options_resolve_formulas_over_inputs(tmp_path):
    runner, outcome = _run(tmp_path, "workers=2")
    assert isinstance(runner.engines.current, LocalBackend)
    assert runner.options.config["backend"]["local"]["max_workers"] == 2
    assert outcome.outputs["squares"] == [1, 4, 9, 16]
    assert os.getpid() not in outcome.outputs["pids"]  # ran in pool workers


def test_recipe_backend_merges_over_config(tmp_path):
    config = {"backend": {"select": "dask", "local": {"retries": 1}, "dask": {"n_workers": 9}}}
    runner, _ = _run(tmp_path, config=config)
    backend = runner.options.config["backend"]
    assert backend["select"] == "local" and backend["local"] == {"retries": 1, "max_workers": 3}
    assert backend["dask"] == {"n_workers": 9}
