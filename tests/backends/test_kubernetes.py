"""KubernetesBackend: manifests per step, secrets by reference, and the Job watch logic on
the kubernetes client's own model objects (no cluster here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStatus,
    V1Job,
    V1JobCondition,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodStatus,
)

from radioflow.backends import get_backend
from radioflow.backends.base import Invocation
from radioflow.backends.kubernetes import KubernetesBackend, follow_job, job_state, termination_result
from radioflow.errors import UsageError
from radioflow.ops import deploy

SECRET_VALUE = "s3cr3t-value-never-rendered"
CONFIG = {
    "namespace": "radio",
    "image": "ghcr.io/example/radioflow:0.1.0",
    "retries": 2,
    "run_id": "session-42",
    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
    "env": {"OMP_NUM_THREADS": "1"},
    "secret_env": {
        "AWS_ACCESS_KEY_ID": {"secret": "s3-credentials", "key": "access_key"},
        "AWS_SECRET_ACCESS_KEY": {"secret": "s3-credentials", "key": "secret_key"},
    },
    "volumes": [{"name": "data", "claim": "radioflow-data", "mount": "/data"}],
    "ttl_seconds_after_finished": 600,
}


def inv(step="image-3", **params):
    return Invocation(step=step, cab={"name": "image", "flavour": "python", "command": "radioflow.cabs.image.run"},
                      params={"ms": "s3://bucket/part-003.zarr", "size": 512, **params}, workdir="/data",
                      log_path="/data/logs/image-3.txt", env={"RADIOFLOW_STEP": step})


@pytest.fixture
def backend():
    return get_backend("kubernetes", {"backend": {"select": "kubernetes", "retries": 2, "kubernetes": CONFIG}})


def test_factory_builds_the_backend_without_a_cluster(backend):
    assert isinstance(backend, KubernetesBackend) and backend.name == "kubernetes"
    assert backend.namespace == "radio" and backend.run_id == "session-42"


def test_job_manifest_for_a_step(backend):
    cmap, job = backend.manifests(inv(), 3)
    name = job["metadata"]["name"]
    assert name == "rf-image-3-session-42-3" and cmap["metadata"]["name"] == name
    assert job["metadata"]["labels"][deploy.RUN_ID_LABEL] == "session-42"
    assert job["metadata"]["labels"][deploy.STEP_LABEL] == "image-3"
    assert job["spec"]["template"]["metadata"]["labels"][deploy.RUN_ID_LABEL] == "session-42"
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["ttlSecondsAfterFinished"] == 600
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["command"][:2] == ["sh", "-c"] and c["command"][3] == "/etc/radioflow/invocation/invocation.json"
    assert c["command"][2].startswith('radioflow step "$0" --result /tmp/radioflow-result.json --max-bytes 4096;')
    assert "> /dev/termination-log" in c["command"][2] and c["command"][2].endswith("exit $rc")
    assert {"name": "RADIOFLOW_STEP", "value": "image-3"} in c["env"]
    assert {"name": "invocation", "mountPath": "/etc/radioflow/invocation", "readOnly": True} in c["volumeMounts"]
    vols = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert vols["invocation"]["configMap"]["name"] == name
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == "radioflow-data"
    restored = Invocation(**json.loads(cmap["data"]["invocation.json"]))
    assert restored == inv()


def test_manifests_pass_kubernetes_validate_strict(backend, tmp_path):
    cmap, job = backend.manifests(inv(), 0)
    path = deploy.write_manifests(tmp_path / "step.yaml", [cmap, job])
    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = subprocess.run([str(exe), "--strict", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 2


def test_secrets_only_by_reference(backend, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_VALUE)
    cmap, job = backend.manifests(inv(), 0)
    text = deploy.to_yaml([cmap, job])
    assert SECRET_VALUE not in text
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs == {"AWS_ACCESS_KEY_ID": {"name": "s3-credentials", "key": "access_key"},
                    "AWS_SECRET_ACCESS_KEY": {"name": "s3-credentials", "key": "secret_key"}}
    assert all("value" not in e for e in env if e["name"].startswith("AWS_"))


def test_secret_parameter_by_value_is_refused(backend):
    with pytest.raises(UsageError, match="parameter 'api_token'"):
        backend.manifests(inv(api_token=SECRET_VALUE), 0)
    with pytest.raises(UsageError, match="looks like a secret"):
        KubernetesBackend({**CONFIG, "env": {"LAKE_PASSWORD": SECRET_VALUE}}).manifests(inv(), 0)


def test_job_names_are_unique_per_call(backend):
    names = {backend.manifests(inv(), None)[1]["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3


def _job(succeeded=None, failed=None, conditions=()):
    return V1Job(metadata=V1ObjectMeta(name="rf-x"),
                 status=V1JobStatus(succeeded=succeeded, failed=failed, conditions=list(conditions) or None))


def test_job_state_from_model_objects():
    assert job_state(_job()) == ("running", "")
    assert job_state(_job(failed=1)) == ("running", "")  # a retry is still to come
    assert job_state(_job(succeeded=1)) == ("succeeded", "")
    done = V1JobCondition(type="Complete", status="True")
    assert job_state(_job(conditions=[done])) == ("succeeded", "")
    failed = V1JobCondition(type="Failed", status="True", reason="BackoffLimitExceeded",
                            message="Job has reached the specified backoff limit")
    assert job_state(_job(failed=3, conditions=[failed])) == (
        "failed", "BackoffLimitExceeded: Job has reached the specified backoff limit")
    assert job_state(_job(conditions=[V1JobCondition(type="Failed", status="False")])) == ("running", "")


def test_follow_job_consumes_watch_events_until_done():
    failed = V1JobCondition(type="Failed", status="True", reason="DeadlineExceeded", message="too slow")
    events = iter([
        {"type": "ADDED", "object": _job()},
        {"type": "MODIFIED", "object": _job(failed=1)},
        {"type": "MODIFIED", "object": _job(failed=2, conditions=[failed])},
        {"type": "MODIFIED", "object": _job(succeeded=1)},
    ])
    state, reason, job = follow_job(events)
    assert (state, reason) == ("failed", "DeadlineExceeded: too slow") and job.status.failed == 2
    assert next(events)["object"].status.succeeded == 1  # stopped at the terminal event
    assert follow_job([{"type": "ADDED", "object": _job()}])[0] == "running"  # watch timed out
    assert follow_job([{"type": "DELETED", "object": _job()}])[:2] == ("failed", "the Job was deleted before it finished")


def test_termination_message_carries_the_result():
    payload = {"ok": True, "outputs": {"image": "s3://bucket/img-3.fits"}, "error": None}
    pod = V1Pod(metadata=V1ObjectMeta(name="rf-x-abc"), status=V1PodStatus(phase="Succeeded", container_statuses=[
        V1ContainerStatus(name="radioflow", image="i", image_id="", ready=False, restart_count=0,
                          state=V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=0, message=json.dumps(payload))))]))
    assert termination_result(pod) == (0, payload)
    crashed = V1Pod(status=V1PodStatus(phase="Failed", container_statuses=[
        V1ContainerStatus(name="radioflow", image="i", image_id="", ready=False, restart_count=0,
                          state=V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=137, message="OOMKilled\n")))]))
    assert termination_result(crashed) == (137, None)
    assert termination_result(V1Pod(status=V1PodStatus(phase="Pending"))) == (None, None)


def test_rendering_a_step_json_from_the_cli(tmp_path):
    from dataclasses import asdict

    from radioflow.cli import main

    step = tmp_path / "image-3.json"
    step.write_text(json.dumps(asdict(inv())))
    assert main(["k8s", "render", str(step), "-o", str(tmp_path / "out"), "-n", "radio"]) == 0
    job = yaml.safe_load((tmp_path / "out" / "job.yaml").read_text())
    cmap = yaml.safe_load((tmp_path / "out" / "configmap.yaml").read_text())
    assert job["metadata"]["namespace"] == "radio"
    assert Invocation(**json.loads(cmap["data"]["invocation.json"])) == inv()


def test_container_command_runs_the_step_and_fills_the_termination_message(backend, tmp_path):
    """The Job's exact shell command, run here with the kubelet's paths redirected to tmp."""
    import os

    cab = {"name": "compute", "flavour": "python", "command": "rf_items.compute",
           "inputs": {"seed": {"dtype": "int"}, "n": {"dtype": "int"}}, "outputs": {"out": {"dtype": "File"}}}
    step = Invocation(step="compute-1", cab=cab, params={"seed": 1, "n": 64, "out": str(tmp_path / "o.bin")},
                      workdir=str(tmp_path), log_path=str(tmp_path / "log.txt"))
    cmap, job = backend.manifests(step, 0)
    (invfile := tmp_path / "invocation.json").write_text(cmap["data"]["invocation.json"])
    sh, flag, script, arg = job["spec"]["template"]["spec"]["containers"][0]["command"]
    term = tmp_path / "termination-log"
    script = script.replace("/dev/termination-log", str(term)).replace("/tmp/radioflow-result.json", str(tmp_path / "r.json"))
    script = script.replace("radioflow step", f"{Path(sys.executable).parent / 'radioflow'} step")
    proc = subprocess.run([sh, flag, script, str(invfile)], capture_output=True, text=True, env=os.environ)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(term.read_text())
    assert data["ok"] is True and len(data["outputs"]["sha256"]) == 64 and len(term.read_bytes()) <= 4096
    assert (tmp_path / "o.bin").stat().st_size == (64 // 2 + 1) * 8 + 64
