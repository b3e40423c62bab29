"""Stimela's ``opts.log`` (dir, name, nest, symlink) for step log files."""
from __future__ import annotations

import os

from radioflow.run.logfiles import LogLayout, run_time_info


def test_default_layout_is_per_run_per_step(tmp_path):
    lay = LogLayout(str(tmp_path), "RUN1")
    assert lay.path("recipe.s1", {}) == str(tmp_path / ".radioflow" / "logs" / "RUN1" / "recipe.s1.log")


def test_stimela_dir_name_nest_and_symlink(tmp_path):
    opts = {"dir": "test-logs/logs-{config.run.datetime}", "nest": 1, "symlink": "logs"}
    lay = LogLayout(str(tmp_path), "RUN1", opts)
    ns = {"config": {"run": {"datetime": "20260101-120000"}}, "info": {"fqname": "x"}}
    logdir = tmp_path / "test-logs" / "logs-20260101-120000"
    assert lay.path("recipe.s1", ns) == str(logdir / "log-recipe.s1.txt")
    assert lay.path("recipe.s2.t1", ns) == str(logdir / "log-recipe.s2.txt")   # deeper than nest 1: parent's file
    link = tmp_path / "test-logs" / "logs"
    assert link.is_symlink() and os.readlink(link) == "logs-20260101-120000"
    ns2 = {**ns, "config": {"run": {"datetime": "20260102-000000"}}}
    LogLayout(str(tmp_path), "RUN2", opts).path("recipe.s1", ns2)
    assert os.readlink(link) == "logs-20260102-000000"                       # follows the latest run


def test_symlink_never_replaces_a_real_directory(tmp_path):
    (tmp_path / "logs").mkdir()
    LogLayout(str(tmp_path), "R", {"dir": "run-a", "symlink": "logs"}).path("r.s", {"info": {}})
    assert (tmp_path / "logs").is_dir() and not (tmp_path / "logs").is_symlink()


def test_disabled_stimela_logs_fall_back_to_default(tmp_path):
    lay = LogLayout(str(tmp_path), "R", {"enable": False, "dir": "x"})
    assert ".radioflow" in lay.path("r.s", {})


def test_run_time_info_format():
    info = run_time_info()
    assert info["datetime"] == f"{info['date']}-{info['time']}" and len(info["datetime"]) == 15
