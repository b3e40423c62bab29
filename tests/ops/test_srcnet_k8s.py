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


def test_ingest_renders_sized_volumes_memory_and_the_ingestor(tmp_path, capsys, monkeypatch):
    from radioflow.ops.estimate import estimate

    monkeypatch.delenv("NUM_TIME_STAMPS", raising=False)
    code, err = _render(tmp_path, capsys, "--dirty", "--visibility", "NUM_TIME_STAMPS=4", "IMAGING_NPIXEL=512",
                        "RUCIO_NAMESPACE=aastar", "--schedule", "0 * * * *", "--ingest")
    assert code == 0, err
    k8s = tmp_path / "k8s"
    est = estimate([RECIPE, "--dirty", "--visibility"],
                   environ={"NUM_TIME_STAMPS": "4", "IMAGING_NPIXEL": "512", "RUCIO_NAMESPACE": "aastar",
                            "OUT_DIR": "/ingest/staging/aastar"})
    for fname in ("cronjob.yaml", "job.yaml"):
        c = _container(yaml.safe_load((k8s / fname).read_text()))
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["OUT_DIR"] == "/ingest/staging/aastar"
        req = int(c["resources"]["requests"]["memory"].removesuffix("Gi"))
        assert req * 2**30 >= est.peak_memory > (req - 1) * 2**30
        assert {"name": "ingest", "mountPath": "/ingest"} in c["volumeMounts"]
    made, kept = sum(est.made.values()), sum(est.kept.values())
    assert made > 4 * 2**30                                   # 4 times x 2717 channels of AA*: the MS is GBs
    data = yaml.safe_load((k8s / "pvc.yaml").read_text())
    assert int(data["spec"]["resources"]["requests"]["storage"].removesuffix("Gi")) * 2**30 >= made
    ingest = yaml.safe_load((k8s / "ingest-pvc.yaml").read_text())
    assert ingest["spec"]["accessModes"] == ["ReadWriteMany"]
    assert int(ingest["spec"]["resources"]["requests"]["storage"].removesuffix("Gi")) * 2**30 >= kept
    dep = yaml.safe_load((k8s / "ingestor.yaml").read_text())
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 1
    command = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:5] == ["radioflow", "lake", "ingest", "/ingest", "--watch"]
    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = subprocess.run([str(exe), "--strict", *map(str, sorted(k8s.glob("*.yaml")))], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.count("passed") == 6, proc.stdout + proc.stderr
    code, err = _render(tmp_path, capsys, "--dirty", "OUT_DIR=/elsewhere", "--ingest")
    assert code == 2 and "do not set OUT_DIR" in err
