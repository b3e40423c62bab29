"""Kubernetes manifests for an SBI (``radioflow k8s render --sbi SBI.json``), without a cluster.

What an SBI needs on Kubernetes, as plain manifest dicts (see :mod:`radioflow.ops.deploy`):

* ``sdp-controller.yaml``: the processing controller Deployment for the real-time PBs
  (``radioflow sdp controller --kind realtime``) on the shared configuration database (etcd;
  SQLite cannot be shared between pods);
* ``sbi-configmap.yaml`` + ``sbi-submit-job.yaml``: the SBI document and a Job submitting it
  (AssignResources) to the configuration database;
* ``pvc-<reservation>.yaml``: one PersistentVolumeClaim per buffer reservation, sized from the
  reservation (the ``buffer_size`` parameter or the workflow's estimate, as the controller
  reserves it), ReadWriteMany since the PB's Job and its Dask workers all write there;
* ``daskcluster-<pb>.yaml``: a dask-kubernetes ``DaskCluster`` per Dask-using PB with the PB's
  ``n_workers`` workers, mounting the PB's buffers;
* ``job-<pb>.yaml``: the PB's execution: ``radioflow sdp controller --pb PB_ID`` claims the PB,
  waits for its dependencies, reserves its buffers on the mounted PVCs (``/buffers/<name>``),
  runs the workflow on the PB's DaskCluster and exits 0 when the PB FINISHED.

Secrets never appear: credentials reach containers through ``backend.kubernetes.secret_env`` /
``env_from_secrets`` (Secret references) and a store URL with a password is refused.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from ...errors import UsageError
from .. import deploy
from .schema import ASSIGN_RESOURCES, detect_shape, load_sbi_file
from .workflows import UnknownWorkflow, buffer_requests, lookup

BUFFER_MOUNT = "/buffers"
SBI_MOUNT = "/etc/radioflow/sbi"
WORKDIR = "/work"


def quantity(nbytes: int) -> str:
    """A storage quantity of at least ``nbytes``: whole MiB (``Mi``), or GiB when that is exact."""
    mib = max(1, math.ceil(nbytes / 2**20))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def check_store(store: str) -> str:
    """The configuration database URL the pods use: etcd, and no credentials in it."""
    parts = urlsplit(store)
    if parts.scheme not in ("etcd", "etcds") or not parts.hostname:
        raise UsageError(f"--store {store!r}: pods on Kubernetes share the configuration database over the "
                         "network; give --store etcd://HOST:PORT[/NAMESPACE] (SQLite cannot be shared by pods).")
    if parts.username or parts.password:
        raise UsageError("--store must not carry credentials: they would be written into the manifests. "
                         "Give etcd://HOST:PORT[/NAMESPACE] and pass credentials through backend.kubernetes.secret_env.")
    return store


def _base_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Configured pod options without the recipe-render data volume (SDP mounts its own)."""
    return {k: v for k, v in opts.items() if k not in ("volumes", "pvc", "workdir")}


def _workflow_path(shape: str, index: int) -> str:
    key = "script" if shape == ASSIGN_RESOURCES else "workflow"
    return f"$.processing_blocks[{index}].{key}"


def render_sbi(path: str | Path, opts: Mapping[str, Any], *, store: str) -> dict[str, dict[str, Any]]:
    """File name -> manifest for the SBI at ``path`` (validated as ``sdp submit`` does).

    ``opts`` are the ``backend.kubernetes`` options (image, namespace, secret_env, pvc
    storage_class/access_modes ...); ``store`` the etcd URL every pod connects to.
    """
    store = check_store(store)
    sbi, pbs = load_sbi_file(path)
    doc_text = Path(path).read_text(encoding="utf-8")
    shape = detect_shape(json.loads(doc_text))
    base = _base_options(opts)
    pvc_opts = dict(opts.get("pvc") or {})
    sbi_name = deploy.k8s_name(sbi["id"], limit=40)
    out: dict[str, dict[str, Any]] = {"sdp-controller.yaml": controller_deployment(base, store)}

    cmap = deploy.config_map(f"{sbi_name}-sbi", base, {"sbi.json": doc_text})
    out["sbi-configmap.yaml"] = cmap
    sbi_volume = [{"name": "sbi", "config_map": cmap["metadata"]["name"], "mount": SBI_MOUNT, "read_only": True}]
    out["sbi-submit-job.yaml"] = deploy.job(
        f"{sbi_name}-submit", {**base, "backoff_limit": 0},
        command=["radioflow", "sdp", "submit", f"{SBI_MOUNT}/sbi.json", "--store", store, "-C", WORKDIR],
        volumes=[*sbi_volume, _scratch()])

    for index, pb in enumerate(pbs):
        if pb["kind"] != "batch":
            continue          # real-time PBs run in the controller Deployment
        try:
            wf = lookup(pb["kind"], pb["workflow"], pb["version"])
        except UnknownWorkflow as exc:
            raise UsageError(f"{path}: {_workflow_path(shape, index)}: {exc}; cannot render its Job and buffers.") from None
        pb_name = deploy.k8s_name(pb["id"], limit=45)
        volumes = []
        for res_name, size in buffer_requests(wf, pb):
            claim = deploy.k8s_name(res_name)
            claim_opts = {**base, "pvc": {"access_modes": ["ReadWriteMany"], **pvc_opts, "name": claim,
                                          "size": quantity(size)}}
            manifest = deploy.pvc(claim_opts)
            manifest["metadata"]["labels"].update({"radioflow.io/pb": deploy.label_value(pb["id"]),
                                                   "radioflow.io/buffer": deploy.label_value(res_name)})
            out[f"pvc-{claim}.yaml"] = manifest
            volumes.append({"name": claim, "claim": claim, "mount": f"{BUFFER_MOUNT}/{res_name}"})
        env: dict[str, str] = {}
        if wf.action == "recipe":
            n_workers = int(pb["parameters"].get("n_workers", 4))
            cluster = deploy.dask_cluster({**base, "volumes": volumes, "n_workers": n_workers},
                                          name=f"{pb_name}-dask")
            out[f"daskcluster-{pb_name}.yaml"] = cluster
            env["RADIOFLOW_BACKEND__DASK__ADDRESS"] = deploy.scheduler_address(cluster)
        command = ["radioflow", "sdp", "controller", "--pb", pb["id"], "--store", store, "--buffer-root",
                   BUFFER_MOUNT, "--max-running", "1", "-C", WORKDIR]
        job = deploy.job(f"{pb_name}-exec", {**base, "volumes": volumes}, command=command, env=env,
                         volumes=[_scratch()])
        job["metadata"]["labels"]["radioflow.io/pb"] = deploy.label_value(pb["id"])
        out[f"job-{pb_name}.yaml"] = job
    return out


def _scratch() -> dict[str, Any]:
    """The working directory of SDP pods (PB logs, run records): node-local scratch."""
    return {"name": "work", "empty_dir": {}, "mount": WORKDIR}


def controller_deployment(base: Mapping[str, Any], store: str) -> dict[str, Any]:
    """An ``apps/v1`` Deployment of the processing controller for real-time PBs (leases make
    more replicas safe: a PB is worked on by one controller at a time)."""
    lbls = deploy.labels(base, component="sdp-controller")
    command = ["radioflow", "sdp", "controller", "--kind", "realtime", "--store", store, "-C", WORKDIR]
    pod = deploy.pod_spec({k: v for k, v in base.items() if k != "resources"}, command=command,
                          volumes=[_scratch()], restart_policy="Always")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "rf-sdp-controller", "labels": dict(lbls),
                     **({"namespace": str(base["namespace"])} if base.get("namespace") else {})},
        "spec": {
            "replicas": int(base.get("controller_replicas", 1)),
            "selector": {"matchLabels": dict(lbls)},
            "template": {"metadata": {"labels": dict(lbls)}, "spec": pod},
        },
    }
