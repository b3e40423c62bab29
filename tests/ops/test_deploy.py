"""Kubernetes manifests: kubernetes-validate --strict, the dask-kubernetes CRD schema, secrets by reference."""
from __future__ import annotations

import jsonschema
import pytest
import yaml

from k8s_schema import crd_schema, validate_strict
from radioflow.cli import main
from radioflow.errors import UsageError
from radioflow.ops import deploy

CFG = {
    "namespace": "radio",
    "image": "ghcr.io/example/radioflow:0.1.0",
    "resources": {"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
    "env": {"OMP_NUM_THREADS": 1},
    "secret_env": {"AWS_SECRET_ACCESS_KEY": {"secret": "s3-credentials", "key": "secret_key"}},
    "env_from_secrets": ["lake-token"],
    "volumes": [
        {"name": "data", "claim": "radioflow-data", "mount": "/data"},
        {"name": "scratch", "empty_dir": {"size_limit": "20Gi"}, "mount": "/scratch"},
    ],
    "pvc": {"name": "radioflow-data", "size": "100Gi", "storage_class": "standard", "access_modes": ["ReadWriteMany"]},
    "service_account": "radioflow",
    "ttl_seconds_after_finished": 3600,
    "labels": {"team": "radio astronomy"},
}

RECIPE = """\
name: scatter-demo
inputs:
  n: {dtype: int, default: 8}
steps:
  copy: {cab: copy}
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("k8s")
    recipe = tmp / "scatter-demo.yml"
    recipe.write_text(RECIPE)
    cfg = tmp / "radioflow.yml"
    cfg.write_text(yaml.safe_dump({"backend": {"kubernetes": CFG, "dask": {"kubernetes": {"n_workers": 3}}}}))
    out = tmp / "out"
    import os

    old = os.environ.get("RADIOFLOW_CONFIG")
    os.environ["RADIOFLOW_CONFIG"] = str(cfg)
    try:
        code = main(["k8s", "render", str(recipe), "-o", str(out), "--schedule", "30 2 * * *", "--dask", "-b", "dask"])
    finally:
        if old is None:
            os.environ.pop("RADIOFLOW_CONFIG")
        else:
            os.environ["RADIOFLOW_CONFIG"] = old
    assert code == 0
    return out


def test_render_writes_every_manifest(rendered):
    names = sorted(p.name for p in rendered.iterdir())
    assert names == ["Dockerfile", "configmap.yaml", "cronjob.yaml", "daskcluster.yaml", "job.yaml", "pvc.yaml"]
    assert not [p for p in rendered.iterdir() if p.name.endswith(".tmp")]


def test_job_cronjob_pvc_configmap_pass_kubernetes_validate_strict(rendered):
    files = [rendered / f for f in ("job.yaml", "cronjob.yaml", "pvc.yaml", "configmap.yaml")]
    proc = validate_strict(files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 4


def test_kubernetes_validate_strict_catches_a_bad_field(tmp_path, rendered):
    job = yaml.safe_load((rendered / "job.yaml").read_text())
    job["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(job))
    assert validate_strict([bad]).returncode != 0


def test_rendered_job_content(rendered):
    job = yaml.safe_load((rendered / "job.yaml").read_text())
    assert job["metadata"]["namespace"] == "radio"
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["radioflow", "run", "/etc/radioflow/recipe/scatter-demo.yml", "-b", "dask"]
    assert c["image"] == "ghcr.io/example/radioflow:0.1.0"
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in c["env"]
    assert {"name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "secret_key"}}} in c["env"]
    assert c["envFrom"] == [{"secretRef": {"name": "lake-token"}}]
    assert {"name": "RADIOFLOW_BACKEND__DASK__ADDRESS",
            "value": "tcp://rf-scatter-demo-dask-scheduler.radio.svc.cluster.local:8786"} in c["env"]
    assert {v["name"]: v for v in pod["volumes"]}["data"]["persistentVolumeClaim"] == {"claimName": "radioflow-data"}
    assert {v["name"]: v for v in pod["volumes"]}["recipe"]["configMap"]["name"] == "rf-scatter-demo-recipe"
    assert job["metadata"]["labels"]["team"] == "radio-astronomy"
    cmap = yaml.safe_load((rendered / "configmap.yaml").read_text())
    assert cmap["data"] == {"scatter-demo.yml": RECIPE}
    cron = yaml.safe_load((rendered / "cronjob.yaml").read_text())
    assert cron["spec"]["schedule"] == "30 2 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pvc = yaml.safe_load((rendered / "pvc.yaml").read_text())
    assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}},
                           "storageClassName": "standard"}


def test_daskcluster_validates_against_the_dask_kubernetes_crd(rendered):
    text = (rendered / "daskcluster.yaml").read_text()
    assert "&id" not in text and "*id" not in text  # no YAML anchors/aliases
    cluster = yaml.safe_load(text)
    assert cluster["metadata"]["name"] == "rf-scatter-demo-dask"
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1" and cluster["kind"] == "DaskCluster"
    assert cluster["spec"]["worker"]["replicas"] == 3
    from dask_kubernetes.operator.validation import validate_cluster_name

    validate_cluster_name(cluster["metadata"]["name"])
    long_name = deploy.dask_cluster({}, name="x" * 80)["metadata"]["name"]
    validate_cluster_name(long_name)
    assert deploy.scheduler_address(cluster) == "tcp://rf-scatter-demo-dask-scheduler.radio.svc.cluster.local:8786"
    schema = crd_schema("daskcluster")
    jsonschema.validate(cluster, schema)
    cluster["spec"]["worker"]["replicaz"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster, schema)


def test_no_secret_value_can_be_inlined():
    with pytest.raises(UsageError, match="secret_env.AWS_SECRET_ACCESS_KEY"):
        deploy.job("x", {"env": {"AWS_SECRET_ACCESS_KEY": "hunter2"}}, command=["true"])
    with pytest.raises(UsageError, match="never the secret value"):
        deploy.job("x", {"secret_env": {"TOKEN": "hunter2"}}, command=["true"])


def test_names_and_schedule_checks():
    assert deploy.k8s_name("Radio Flow_step.A", "x" * 80) == ("radio-flow-step-a-" + "x" * 80)[:63]
    assert deploy.label_value("--a b--") == "a-b"
    with pytest.raises(UsageError, match="five cron fields"):
        deploy.cron_job("x", {}, schedule="every day", command=["true"])
    with pytest.raises(UsageError, match="volumes\\[0\\]"):
        deploy.job("x", {"volumes": [{"name": "v", "mount": "/v"}]}, command=["true"])


def test_dockerfile_installs_radioflow_and_tools():
    text = deploy.dockerfile()
    assert text.startswith("# radioflow runtime image")
    assert "FROM python:3.11-slim-bookworm" in text and "wsclean casacore-tools" in text
    assert 'pip install "/opt/radioflow"' in text and "USER 1000" in text


def test_missing_recipe_is_a_usage_error(tmp_path, capsys):
    assert main(["k8s", "render", str(tmp_path / "nope.yml"), "-o", str(tmp_path / "o")]) == 2
