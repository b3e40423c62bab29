"""k8s render of the SRCNet AA* recipe: flags and inputs reach the CronJob, names stay per run."""
from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from radioflow.cli import main

RECIPE = str(resources.files("radioflow.recipes") / "srcnet-aastar.yml")


def _render(tmp_path, capsys, *args):
    capsys.readouterr()
    code = main(["k8s", "render", RECIPE, "-o", str(tmp_path / "k8s"), *args])
    return code, capsys.readouterr().err


def _container(manifest):
    spec = manifest["spec"]
    spec = spec["jobTemplate"]["spec"] if manifest["kind"] == "CronJob" else spec
    return spec["template"]["spec"]["containers"][0]


def test_cronjob_carries_flags_and_environment_and_validates(tmp_path, capsys):
    code, err = _render(tmp_path, capsys, "--dirty", "--cleaned", "NUM_TIME_STAMPS=4", "imaging_npixel=512",
                        "niter=20", "--schedule", "0 * * * *")
    assert code == 0, err
    cron = yaml.safe_load((tmp_path / "k8s" / "cronjob.yaml").read_text())
    c = _container(cron)
    assert c["command"][-2:] == ["--dirty", "--cleaned"]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    assert env["NUM_TIME_STAMPS"] == "4" and env["IMAGING_NPIXEL"] == "512" and env["CLEAN_NITER"] == "20"
    assert "OBS_ID" not in env and "FILE_PREFIX" not in env                    # per-run defaults apply
    assert cron["spec"]["schedule"] == "0 * * * *"
    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = subprocess.run([str(exe), "--strict", str(tmp_path / "k8s" / "cronjob.yaml"),
                           str(tmp_path / "k8s" / "job.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fixed_names_are_refused_for_a_schedule_but_templates_pass(tmp_path, capsys):
    code, err = _render(tmp_path, capsys, "--dirty", "OBS_ID=aastar-001", "--schedule", "0 * * * *")
    assert code == 1 and "OBS_ID='aastar-001' would be the same in every run" in err and "{config.run.id}" in err
    code, err = _render(tmp_path, capsys, "--dirty", "FILE_PREFIX=x_", "--schedule", "0 * * * *")
    assert code == 1 and "FILE_PREFIX='x_'" in err
    code, err = _render(tmp_path, capsys, "--dirty", "OBS_ID=hourly-{config.run.id}", "--schedule", "0 * * * *")
    assert code == 0, err
    c = _container(yaml.safe_load((tmp_path / "k8s" / "cronjob.yaml").read_text()))
    assert {"name": "OBS_ID", "value": "hourly-{config.run.id}"} in c["env"]
    code, err = _render(tmp_path, capsys, "--dirty", "OBS_ID=once")            # a one-off Job may be fixed
    assert code == 0, err


def test_bad_render_arguments_are_clear(tmp_path, capsys):
    code, err = _render(tmp_path, capsys, "--dirty", "NUM_TIME_STAMPS=many")
    assert code == 2 and "NUM_TIME_STAMPS='many'" in err
    code, err = _render(tmp_path, capsys, "--dirty", "NOPE=1")
    assert code == 2 and "'NOPE' is neither an input" in err
    code, err = _render(tmp_path, capsys, "--dirt")
    assert code == 2 and "No such option: --dirt" in err and "--dirty/--no-dirty" in err
