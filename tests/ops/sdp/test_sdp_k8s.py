"""``radioflow k8s render --sbi``: controller Deployment, one PVC per buffer reservation sized from
it, a DaskCluster per Dask PB, the PB's Job mounting the PVCs; built-in kinds pass
``kubernetes-validate --strict``, the DaskCluster the dask-kubernetes CRD schema. The rendered
commands are run here against a real etcd to show they work together."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from k8s_schema import crd_schema, validate_strict
from radioflow.cli import main
from radioflow.ops.sdp import buffers as bufmod
from radioflow.ops.sdp import example_path
from radioflow.ops.sdp import operations as ops
from radioflow.ops.sdp.configdb import open_store
from radioflow.ops.sdp.k8s import quantity
from radioflow.ops.sdp.schema import load_sbi_file
from radioflow.ops.sdp.workflows import buffer_requests, lookup

SRC = str(Path(__file__).resolve().parents[3] / "src")
CONFIG = {"backend": {"kubernetes": {
    "namespace": "sdp", "image": "ghcr.io/example/radioflow:0.1.0",
    "secret_env": {"AWS_SECRET_ACCESS_KEY": {"secret": "s3-credentials", "key": "secret_key"}},
    "env_from_secrets": ["etcd-auth"], "pvc": {"storage_class": "cephfs"},
}}}


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "radioflow.yml"
    path.write_text(yaml.safe_dump(CONFIG))
    monkeypatch.setenv("RADIOFLOW_CONFIG", str(path))
    monkeypatch.delenv("RADIOFLOW_SDP_STORE", raising=False)
    return path


def _render(capsys, sbi: Path, out: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["k8s", "render", "--sbi", str(sbi), "-o", str(out), *extra])
    return code, capsys.readouterr().err


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_render_sbi_manifests_validate_and_carry_the_reservations(tmp_path, capsys, config):
    sbi = example_path("sbi-prototype.json")
    out = tmp_path / "k8s"
    code, err = _render(capsys, sbi, out, "--store", "etcd://etcd.sdp:2379/prod")
    assert code == 0, err
    _, pbs = load_sbi_file(sbi)
    batch = pbs[1]
    requests = buffer_requests(lookup("batch", "batch_imaging", "0.1.0"), batch)
    pb_name = batch["id"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["sdp-controller.yaml", "sbi-configmap.yaml", "sbi-submit-job.yaml",
                            f"daskcluster-{pb_name}.yaml", f"job-{pb_name}.yaml",
                            *(f"pvc-{n}.yaml" for n, _ in requests)])

    builtin = [p for p in out.iterdir() if not p.name.startswith("daskcluster")]
    proc = validate_strict(builtin)
    assert proc.returncode == 0 and proc.stdout.count("passed") == len(builtin), proc.stdout + proc.stderr
    cluster = _load(out / f"daskcluster-{pb_name}.yaml")
    schema = crd_schema("daskcluster")
    jsonschema.validate(cluster, schema)
    assert cluster["spec"]["worker"]["replicas"] == batch["parameters"]["n_workers"]
    broken = json.loads(json.dumps(cluster))
    broken["spec"]["worker"]["spec"]["containers"][0]["volumeMountz"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)

    # one PVC per reservation, at least as large as the reservation the controller makes
    for name, size in requests:
        pvc = _load(out / f"pvc-{name}.yaml")
        assert pvc["metadata"]["name"] == name and pvc["metadata"]["namespace"] == "sdp"
        spec = pvc["spec"]
        assert spec["accessModes"] == ["ReadWriteMany"] and spec["storageClassName"] == "cephfs"
        storage = spec["resources"]["requests"]["storage"]
        assert storage == quantity(size)
        got = int(storage[:-2]) * (2**30 if storage.endswith("Gi") else 2**20)
        assert size <= got < size + 2**20
    # the PB's Job and its Dask workers mount every buffer at /buffers/<reservation>
    job = _load(out / f"job-{pb_name}.yaml")
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"][:5] == ["radioflow", "sdp", "controller", "--pb", batch["id"]]
    assert c["command"][c["command"].index("--store") + 1] == "etcd://etcd.sdp:2379/prod"
    assert c["command"][c["command"].index("--buffer-root") + 1] == "/buffers"
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    for name, _ in requests:
        assert claims[mounts[f"/buffers/{name}"]] == name
    worker = cluster["spec"]["worker"]["spec"]
    assert {m["mountPath"] for m in worker["containers"][0]["volumeMounts"]} == {f"/buffers/{n}" for n, _ in requests}
    env = {e["name"]: e for e in c["env"]}
    assert env["RADIOFLOW_BACKEND__DASK__ADDRESS"]["value"] == \
        f"tcp://{pb_name}-dask-scheduler.sdp.svc.cluster.local:8786"
    assert env["AWS_SECRET_ACCESS_KEY"] == {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {
        "secretKeyRef": {"name": "s3-credentials", "key": "secret_key"}}}
    assert c["envFrom"] == [{"secretRef": {"name": "etcd-auth"}}]
    # the controller Deployment runs the real-time PBs on the same database
    dep = _load(out / "sdp-controller.yaml")
    cmd = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert dep["kind"] == "Deployment" and cmd[:5] == ["radioflow", "sdp", "controller", "--kind", "realtime"]
    assert cmd[cmd.index("--store") + 1] == "etcd://etcd.sdp:2379/prod"
    submit = _load(out / "sbi-submit-job.yaml")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert submit[:4] == ["radioflow", "sdp", "submit", "/etc/radioflow/sbi/sbi.json"]
    assert json.loads(_load(out / "sbi-configmap.yaml")["data"]["sbi.json"]) == json.loads(sbi.read_text())


def test_buffer_size_parameter_sizes_the_pvcs(tmp_path, capsys, config):
    doc = json.loads(example_path("sbi-assign-resources.json").read_text())
    doc["processing_blocks"][0]["parameters"]["buffer_size"] = 3 * 2**30
    sbi = tmp_path / "sbi.json"
    sbi.write_text(json.dumps(doc))
    code, err = _render(capsys, sbi, tmp_path / "k8s", "--store", "etcd://etcd:2379")
    assert code == 0, err
    pvcs = sorted((tmp_path / "k8s").glob("pvc-*.yaml"))
    assert len(pvcs) == 2 and {_load(p)["spec"]["resources"]["requests"]["storage"] for p in pvcs} == {"3Gi"}
    assert {_load(p)["spec"]["accessModes"][0] for p in pvcs} == {"ReadWriteMany"}
    assert "storageClassName" in _load(pvcs[0])["spec"]


def test_invalid_sbi_gives_the_same_error_as_submit(tmp_path, capsys, config):
    doc = json.loads(example_path("sbi-prototype.json").read_text())
    doc["processing_blocks"][1]["workflow"]["version"] = "latest"
    del doc["processing_blocks"][0]["workflow"]["type"]
    bad = tmp_path / "sbi.json"
    bad.write_text(json.dumps(doc))
    code, render_err = _render(capsys, bad, tmp_path / "k8s", "--store", "etcd://etcd:2379")
    code2 = main(["sdp", "submit", str(bad), "-C", str(tmp_path)])
    submit_err = capsys.readouterr().err
    assert code == code2 == 1
    assert render_err == submit_err
    assert "$.processing_blocks[0].workflow: 'type' is a required property" in render_err
    assert "$.processing_blocks[1].workflow.version: 'latest' does not match" in render_err
    assert "Traceback" not in render_err and not (tmp_path / "k8s").exists()


def test_unknown_workflow_store_and_argument_errors(tmp_path, capsys, config):
    doc = json.loads(example_path("sbi-assign-resources.json").read_text())
    doc["processing_blocks"][0]["script"]["version"] = "0.9.0"
    sbi = tmp_path / "sbi.json"
    sbi.write_text(json.dumps(doc))
    code, err = _render(capsys, sbi, tmp_path / "k8s")
    assert code == 2 and "$.processing_blocks[0].script: workflow batch/batch_imaging has no version 0.9.0" in err
    good = example_path("sbi-assign-resources.json")
    code, err = _render(capsys, good, tmp_path / "k8s", "--store", f"sqlite:///{tmp_path}/x.db")
    assert code == 2 and "give --store etcd://HOST:PORT" in err
    code, err = _render(capsys, good, tmp_path / "k8s", "--store", "etcd://root:hunter2@etcd:2379")
    assert code == 2 and "must not carry credentials" in err and "hunter2" not in err
    code, err = _render(capsys, good, tmp_path / "k8s", "--dask")
    assert code == 2 and "--sbi takes no recipe arguments" in err
    assert main(["k8s", "render", "-o", str(tmp_path / "k8s")]) == 2
    assert "either a recipe/step file or --sbi" in capsys.readouterr().err
    assert not (tmp_path / "k8s").exists()


def test_free_space_is_checked_on_the_file_system_of_each_reservation(tmp_path):
    """A PVC is mounted at <root>/<name>: the space that counts is the PVC's, not the root's."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    mount = Path(os.path.realpath(shm)) / f"rf-pvc-{os.getpid()}"
    mount.mkdir()
    try:
        root = tmp_path / "buffers"
        root.mkdir()
        (root / "vis").symlink_to(mount)          # stands for a PVC mounted there
        shm_free = bufmod.shutil.disk_usage(mount).free
        disk_free = bufmod.shutil.disk_usage(root).free
        if disk_free <= shm_free * 1.1:
            pytest.skip("the root file system is not larger than /dev/shm")
        fits_on_disk = int(shm_free * 1.05)
        assert bufmod.plan("pb-1", [("img", fits_on_disk)], root, others=[])     # on the root file system
        with pytest.raises(bufmod.BufferSpaceError, match=rf"cannot create buffer reservations vis for pb-1: .* but "
                                                          rf"{root / 'vis'} has"):
            bufmod.plan("pb-1", [("vis", fits_on_disk), ("img", 1)], root, others=[])
    finally:
        mount.rmdir()


@pytest.mark.slow
def test_rendered_commands_run_an_sbi_on_a_real_etcd(tmp_path, capsys, config, etcd_server):
    """The submit Job, the controller Deployment and the PB's Job, run as the pods would (paths
    mapped to this machine): the real-time PB runs in the Deployment's controller, the batch PB
    in its Job's controller, which waits for the release, then exits 0 with the PB FINISHED."""
    doc = {"id": "sbi-k8s-20261204-00000", "max_length": 60.0, "processing_blocks": [
        {"id": "pb-k8s-20261204-00000", "workflow": {"type": "realtime", "id": "test_realtime", "version": "0.2.0"},
         "parameters": {}},
        {"id": "pb-k8s-20261204-00001", "workflow": {"type": "batch", "id": "test_batch", "version": "0.2.0"},
         "parameters": {"duration": 0.5}, "dependencies": [{"pb_id": "pb-k8s-20261204-00000", "type": ["none"]}]}]}
    sbi = tmp_path / "sbi.json"
    sbi.write_text(json.dumps(doc))
    store = f"etcd://{etcd_server.split('://', 1)[1]}/k8s{os.getpid()}"
    code, err = _render(capsys, sbi, tmp_path / "k8s", "--store", store)
    assert code == 0, err
    k8s = tmp_path / "k8s"
    assert not list(k8s.glob("pvc-*")) and not list(k8s.glob("daskcluster-*"))   # test_batch has no buffers

    def local(cmd: list[str], workdir: Path) -> list[str]:
        workdir.mkdir(exist_ok=True)
        mapped = [str(sbi) if a == "/etc/radioflow/sbi/sbi.json" else str(workdir) if a == "/work" else
                  str(tmp_path / "buffers") if a == "/buffers" else a for a in cmd]
        assert mapped[0] == "radioflow"
        return [sys.executable, "-m", "radioflow", *mapped[1:]]

    def command(name: str) -> list[str]:
        return _load(k8s / name)["spec"]["template"]["spec"]["containers"][0]["command"]

    env = {**os.environ, "PYTHONPATH": SRC}
    submit = subprocess.run(local(command("sbi-submit-job.yaml"), tmp_path / "submit"), env=env, text=True,
                            capture_output=True, timeout=60)
    assert submit.returncode == 0, submit.stderr
    procs = [subprocess.Popen(local(command(name), tmp_path / name.split(".")[0]), env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in ("sdp-controller.yaml", "job-pb-k8s-20261204-00001.yaml")]
    db = open_store(store)
    try:
        deadline = time.time() + 60
        while db.require_pb("pb-k8s-20261204-00000")["state"] != "RUNNING" or \
                db.require_pb("pb-k8s-20261204-00001")["state"] != "WAITING":
            assert time.time() < deadline, "timed out waiting for RUNNING + WAITING"
            time.sleep(0.2)
        ops.release(db, doc["id"])
        out, err = procs[1].communicate(timeout=60)
        assert procs[1].returncode == 0, out + err
        assert "pb-k8s-20261204-00001 FINISHED" in out
        owners = {ln["message"] for ln in db.logs("pb-k8s-20261204-00001") if ln["message"].startswith("Claimed")}
        assert len(owners) == 1
        assert db.require_pb("pb-k8s-20261204-00000")["state"] == "FINISHED"
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.communicate(timeout=30)
        db.close()
