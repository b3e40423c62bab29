"""KubernetesBackend: manifests per step, secrets by reference, and the Job watch logic on
the kubernetes client's own model objects (no cluster here)."""
from __future__ import annotations

import dataclasses
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
from radioflow.backends.kubernetes import KubernetesBackend, follow_job, job_state, termination_result
from radioflow.errors import UsageError
from radioflow.invoke import Invocation
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
    assert restored == dataclasses.replace(inv(), log_path=None)  # the pod logs to stdout only


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
    assert Invocation(**json.loads(cmap["data"]["invocation.json"])) == dataclasses.replace(inv(), log_path=None)


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


class LoopbackKubelet:
    """Just enough of BatchV1Api + CoreV1Api to run the backend's Jobs on this machine.

    Objects are the kubernetes client's own models. A Job "runs" when it is watched: its pod's
    exact container command runs here as a subprocess, with the ConfigMap mounted into a temp
    directory, plain env values set, ``secretKeyRef`` resolved from ``secrets`` (as the kubelet
    does) and ``/dev/termination-log`` redirected to a file that becomes the termination message.
    """

    def __init__(self, root: Path, secrets: dict[str, dict[str, str]]) -> None:
        self.root, self.secrets = root, secrets
        self.jobs: dict[str, dict] = {}
        self.cmaps: dict[str, dict] = {}
        self.pods: dict[str, V1Pod] = {}
        self.logs: dict[str, bytes] = {}
        self.deleted: list[str] = []

    # BatchV1Api
    def create_namespaced_job(self, namespace, body):
        self.jobs[body["metadata"]["name"]] = body
        return V1Job(metadata=V1ObjectMeta(name=body["metadata"]["name"], uid="uid-" + body["metadata"]["name"]))

    def read_namespaced_job(self, name, namespace):
        return V1Job(metadata=V1ObjectMeta(name=name, labels=self.jobs[name]["metadata"]["labels"]))

    def delete_namespaced_job(self, name, namespace, propagation_policy=None):
        self.deleted.append(name)

    # CoreV1Api
    def create_namespaced_config_map(self, namespace, body):
        self.cmaps[body["metadata"]["name"]] = body

    def patch_namespaced_config_map(self, name, namespace, body):
        self.cmaps[name]["metadata"].update(body["metadata"])

    def list_namespaced_pod(self, namespace, label_selector):
        from kubernetes.client import V1PodList

        job = label_selector.split("=", 1)[1]
        return V1PodList(items=[p for n, p in self.pods.items() if n.startswith(job + "-")])

    def read_namespaced_pod_log(self, name, namespace, follow, _preload_content):
        data = self.logs[name]

        class Response:
            def stream(self):
                yield from (data[i:i + 50] for i in range(0, len(data), 50))

            def release_conn(self):
                pass

        return Response()

    def run(self, name: str):
        """Run Job ``name``'s pod; yield the watch events the API server would send."""
        import datetime
        import os

        job = self.jobs[name]
        yield {"type": "ADDED", "object": _job()}
        pod = job["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        workdir = self.root / name
        cm_vol = next(v for v in pod["volumes"] if "configMap" in v)
        cm_dir = workdir / "invocation"
        cm_dir.mkdir(parents=True)
        for fname, text in self.cmaps[cm_vol["configMap"]["name"]]["data"].items():
            (cm_dir / fname).write_text(text)
        term = workdir / "termination-log"
        args = [a.replace(mounts[cm_vol["name"]], str(cm_dir)).replace("/dev/termination-log", str(term))
                 .replace("/tmp/radioflow-result.json", str(workdir / "result.json"))
                 .replace("radioflow step", f"{Path(sys.executable).parent / 'radioflow'} step")
                for a in c["command"]]
        env = dict(os.environ)
        for e in c.get("env", []):
            if "valueFrom" in e:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = self.secrets[ref["name"]][ref["key"]]
            else:
                env[e["name"]] = e["value"]
        proc = subprocess.run(args, capture_output=True, env=env)
        pod_name = f"{name}-x7k2p"
        self.logs[pod_name] = proc.stdout + proc.stderr
        self.pods[pod_name] = V1Pod(
            metadata=V1ObjectMeta(name=pod_name, creation_timestamp=datetime.datetime.now(datetime.timezone.utc)),
            status=V1PodStatus(phase="Succeeded" if proc.returncode == 0 else "Failed", container_statuses=[
                V1ContainerStatus(name="radioflow", image=c["image"], image_id="", ready=False, restart_count=0,
                                  state=V1ContainerState(terminated=V1ContainerStateTerminated(
                                      exit_code=proc.returncode, message=term.read_text() if term.exists() else None)))]))
        cond = (V1JobCondition(type="Complete", status="True") if proc.returncode == 0 else
                V1JobCondition(type="Failed", status="True", reason="BackoffLimitExceeded",
                               message="Job has reached the specified backoff limit"))
        yield {"type": "MODIFIED", "object": _job(succeeded=1 if proc.returncode == 0 else None,
                                                  failed=None if proc.returncode == 0 else 1, conditions=[cond])}


class LoopbackBackend(KubernetesBackend):
    def __init__(self, config, kubelet):
        super().__init__({**config, "poll_seconds": 0.05})
        self._api = (kubelet, kubelet)
        self.kubelet = kubelet

    def _job_events(self, name):
        return self.kubelet.run(name)


def test_map_submits_watches_and_streams_logs_of_every_job(tmp_path):
    kubelet = LoopbackKubelet(tmp_path / "kubelet", {"s3-credentials": {"access_key": "AK1", "secret_key": SECRET_VALUE}})
    backend = LoopbackBackend(CONFIG, kubelet)
    cab = {"name": "compute", "flavour": "python", "command": "rf_items.compute",
           "inputs": {"seed": {"dtype": "int"}, "n": {"dtype": "int"}}, "outputs": {"out": {"dtype": "File"}}}
    invs = [Invocation(step=f"part-{i}", cab=cab, params={"seed": i, "n": 64, "out": str(tmp_path / f"o{i}.bin")},
                       workdir=str(tmp_path), log_path=str(tmp_path / "client-logs" / f"part-{i}.txt")) for i in range(3)]
    bad = Invocation(step="broken", cab={**cab, "command": "rf_items.nope"}, params={"seed": 1, "out": "x"},
                     workdir=str(tmp_path), log_path=str(tmp_path / "client-logs" / "broken.txt"))
    results = backend.map([*invs, bad])
    assert [r.ok for r in results] == [True, True, True, False]
    for i, r in enumerate(results[:3]):
        assert r.returncode == 0 and len(r.outputs["sha256"]) == 64
        assert (tmp_path / f"o{i}.bin").stat().st_size == 33 * 8 + 64
        client_log = (tmp_path / "client-logs" / f"part-{i}.txt").read_text()
        assert f"# step part-{i}: cab compute (python) started" in client_log and client_log == r.log
    assert results[3].returncode == 1 and "has no function 'nope'" in results[3].error
    assert "has no function 'nope'" in (tmp_path / "client-logs" / "broken.txt").read_text()
    names = list(kubelet.jobs)
    assert len(names) == 4 and all(kubelet.jobs[n]["metadata"]["labels"][deploy.RUN_ID_LABEL] == "session-42" for n in names)
    owner = kubelet.cmaps[names[0]]["metadata"]["ownerReferences"][0]
    assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": names[0], "uid": "uid-" + names[0]}
    assert SECRET_VALUE not in deploy.to_yaml([*kubelet.jobs.values(), *kubelet.cmaps.values()])
    backend.cancel(["someone-elses-job", names[0]])
    assert kubelet.deleted == [names[0]]  # only Jobs this backend created


def test_secret_reference_reaches_the_step_but_no_manifest(tmp_path):
    kubelet = LoopbackKubelet(tmp_path / "kubelet", {"s3-credentials": {"access_key": "AK1", "secret_key": SECRET_VALUE}})
    backend = LoopbackBackend(CONFIG, kubelet)
    code = "import os, hashlib\ndigest = hashlib.sha256(os.environ['AWS_SECRET_ACCESS_KEY'].encode()).hexdigest()"
    cab = {"name": "peek", "flavour": {"kind": "python-code", "output_vars": ["digest"]}, "command": code,
           "inputs": {}, "outputs": {"digest": {"dtype": "str"}}}
    r = backend.run(Invocation(step="peek", cab=cab, params={}, workdir=str(tmp_path)))
    import hashlib

    assert r.ok, r.error
    assert r.outputs["digest"] == hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
    (job,) = kubelet.jobs.values()
    assert SECRET_VALUE not in deploy.to_yaml([job, *kubelet.cmaps.values()]) and SECRET_VALUE not in r.log
