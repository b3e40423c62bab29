"""Layered configuration: defaults < user file < project file < RADIOFLOW_* env < command line."""
from __future__ import annotations

import pytest

from radioflow.config import DEFAULTS, load_config, parse_overrides
from radioflow.errors import UsageError


def test_layers_in_order(tmp_path):
    home, proj = tmp_path / "home", tmp_path / "proj"
    (home / ".config" / "radioflow").mkdir(parents=True)
    proj.mkdir()
    (home / ".config" / "radioflow" / "config.yml").write_text(
        "backend:\n  select: dask\n  dask: {n_workers: 3, threads_per_worker: 2}\nimaging: {threads: 4}\n")
    (proj / "radioflow.yml").write_text("backend:\n  dask: {n_workers: 5}\n")
    env = {"HOME": str(home), "RADIOFLOW_BACKEND__DASK__N_WORKERS": "7", "RADIOFLOW_IMAGING__EPSILON": "1e-6",
           "RADIOFLOW_LAYOUTS": "/not/a/config/key"}
    cfg = load_config(parse_overrides(["backend.select=lithops"]), cwd=proj, home=home, environ=env)
    assert cfg["backend"]["select"] == "lithops"                  # command line wins
    assert cfg["backend"]["dask"] == {"n_workers": 7, "threads_per_worker": 2}  # env > project > user
    assert cfg["imaging"] == {"epsilon": 1e-6, "threads": 4}     # env parsed as YAML scalars
    assert "layouts" in cfg and cfg["layouts"] == DEFAULTS["layouts"]
    assert load_config(cwd=proj, home=tmp_path / "nobody", environ={})["backend"]["select"] == "local"


def test_bad_config_files_and_overrides_are_clear(tmp_path):
    (tmp_path / "radioflow.yml").write_text("backend: [unclosed\n")
    with pytest.raises(UsageError, match=r"radioflow.yml:\d+ is not valid YAML"):
        load_config(cwd=tmp_path, home=tmp_path, environ={})
    (tmp_path / "radioflow.yml").write_text("- a list\n")
    with pytest.raises(UsageError, match="mapping at the top level"):
        load_config(cwd=tmp_path, home=tmp_path, environ={})
    with pytest.raises(UsageError, match="key.sub=value"):
        parse_overrides(["no-equals-sign"])
