"""Kubernetes manifests and the runtime Dockerfile, rendered from radioflow's configuration.

Everything here is plain data: dicts shaped like the Kubernetes API objects (``batch/v1``
Job and CronJob, ``v1`` PersistentVolumeClaim and ConfigMap, ``kubernetes.dask.org/v1``
DaskCluster), so the same code feeds the :class:`~radioflow.backends.kubernetes.KubernetesBackend`
and ``radioflow k8s render`` (which needs no cluster).

Options (``backend.kubernetes``; ``backend.dask.kubernetes`` for the Dask cluster)::

    namespace: radioflow
    image: ghcr.io/example/radioflow:0.1.0
    image_pull_policy: IfNotPresent
    image_pull_secrets: [regcred]
    service_account: radioflow
    resources: {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 4Gi}}
    env: {OMP_NUM_THREADS: "1"}                  # plain, non-secret values only
    secret_env:                                  # secrets by reference, never by value
      AWS_SECRET_ACCESS_KEY: {secret: s3-credentials, key: secret_key}
    env_from_secrets: [s3-credentials]          # every key of a Secret as env vars
    volumes:
      - {name: data, claim: radioflow-data, mount: /data}
      - {name: scratch, empty_dir: {size_limit: 20Gi}, mount: /scratch}
    pvc: {name: radioflow-data, size: 100Gi, storage_class: standard, access_modes: [ReadWriteMany]}
    backoff_limit: 0
    ttl_seconds_after_finished: 86400
    active_deadline_seconds: 86400
    node_selector: {}
    tolerations: []
    labels: {team: radio}
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ..errors import UsageError
from ..secrets import is_secret

DEFAULT_IMAGE = "radioflow:latest"
LABEL_PREFIX = "radioflow.io"
RUN_ID_LABEL = f"{LABEL_PREFIX}/run-id"
STEP_LABEL = f"{LABEL_PREFIX}/step"
_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def k8s_name(*parts: str, limit: int = 63) -> str:
    """A valid RFC 1123 name (lowercase alphanumerics and ``-``) from ``parts``, at most ``limit`` chars."""
    text = "-".join(_NAME_BAD.sub("-", str(p).lower()) for p in parts if str(p))
    text = re.sub("-{2,}", "-", text).strip("-")[:limit].strip("-")
    return text or "radioflow"


def label_value(text: str) -> str:
    """A valid label value (<= 63 chars of ``[A-Za-z0-9_.-]``, alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text))[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def labels(cfg: Mapping[str, Any], *, run_id: str | None = None, step: str | None = None,
           component: str = "step") -> dict[str, str]:
    """Standard labels plus the configured ones; ``run_id`` scopes every object to one session."""
    out = {
        "app.kubernetes.io/name": "radioflow",
        "app.kubernetes.io/managed-by": "radioflow",
        "app.kubernetes.io/component": component,
    }
    out.update({str(k): label_value(v) for k, v in (cfg.get("labels") or {}).items()})
    if run_id:
        out[RUN_ID_LABEL] = label_value(run_id)
    if step:
        out[STEP_LABEL] = label_value(step)
    return out


def _metadata(name: str, cfg: Mapping[str, Any], lbls: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(lbls)}
    if cfg.get("namespace"):
        meta["namespace"] = str(cfg["namespace"])
    return meta


def env_vars(cfg: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Container ``env``: plain values from ``env``/``extra``, secrets as ``secretKeyRef`` only.

    A secret-looking name (``*KEY*``, ``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*`` ...) with an
    inline value is refused: it would end up in the manifest, ``kubectl describe`` and logs.
    """
    out: list[dict[str, Any]] = []
    plain = {**(cfg.get("env") or {}), **(extra or {})}
    for name, value in plain.items():
        if is_secret(str(name)) and value not in (None, ""):
            raise UsageError(
                f"backend.kubernetes.env.{name} looks like a secret and would be written into the "
                "Job manifest in clear text. Store it in a Kubernetes Secret and reference it with "
                f"backend.kubernetes.secret_env.{name}: {{secret: <secret-name>, key: <key>}}."
            )
        out.append({"name": str(name), "value": "" if value is None else str(value)})
    for name, ref in (cfg.get("secret_env") or {}).items():
        if not isinstance(ref, Mapping) or not ref.get("secret") or not ref.get("key"):
            raise UsageError(
                f"backend.kubernetes.secret_env.{name} must be a reference "
                "{secret: <secret-name>, key: <key>}, never the secret value itself."
            )
        key_ref: dict[str, Any] = {"name": str(ref["secret"]), "key": str(ref["key"])}
        if "optional" in ref:
            key_ref["optional"] = bool(ref["optional"])
        out.append({"name": str(name), "valueFrom": {"secretKeyRef": key_ref}})
    return out


def _volumes(cfg: Mapping[str, Any], extra: Sequence[Mapping[str, Any]] = ()) -> tuple[list, list]:
    volumes, mounts = [], []
    for i, vol in enumerate([*(cfg.get("volumes") or []), *extra]):
        name = k8s_name(vol.get("name") or f"vol-{i}")
        if vol.get("claim"):
            source: dict[str, Any] = {"persistentVolumeClaim": {"claimName": str(vol["claim"])}}
        elif vol.get("config_map"):
            source = {"configMap": {"name": str(vol["config_map"])}}
        elif vol.get("secret"):
            source = {"secret": {"secretName": str(vol["secret"])}}
        elif "empty_dir" in vol:
            opts = vol.get("empty_dir") or {}
            source = {"emptyDir": {"sizeLimit": str(opts["size_limit"])} if opts.get("size_limit") else {}}
        elif vol.get("host_path"):
            source = {"hostPath": {"path": str(vol["host_path"])}}
        else:
            raise UsageError(
                f"backend.kubernetes.volumes[{i}] ({name}) needs one of claim, config_map, secret, "
                "empty_dir or host_path."
            )
        if not vol.get("mount"):
            raise UsageError(f"backend.kubernetes.volumes[{i}] ({name}) needs a 'mount' path.")
        volumes.append({"name": name, **source})
        mount: dict[str, Any] = {"name": name, "mountPath": str(vol["mount"])}
        if vol.get("read_only"):
            mount["readOnly"] = True
        if vol.get("sub_path"):
            mount["subPath"] = str(vol["sub_path"])
        mounts.append(mount)
    return volumes, mounts


def pod_spec(cfg: Mapping[str, Any], *, command: Sequence[str], env: Mapping[str, str] | None = None,
             volumes: Sequence[Mapping[str, Any]] = (), restart_policy: str = "Never") -> dict[str, Any]:
    """The pod template spec shared by Jobs and CronJobs."""
    vols, mounts = _volumes(cfg, volumes)
    container: dict[str, Any] = {
        "name": "radioflow",
        "image": str(cfg.get("image") or DEFAULT_IMAGE),
        "imagePullPolicy": str(cfg.get("image_pull_policy", "IfNotPresent")),
        "command": [str(c) for c in command],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if env_list := env_vars(cfg, env):
        container["env"] = env_list
    if cfg.get("env_from_secrets"):
        container["envFrom"] = [{"secretRef": {"name": str(s)}} for s in cfg["env_from_secrets"]]
    if cfg.get("resources"):
        container["resources"] = {
            kind: {k: str(v) for k, v in (cfg["resources"].get(kind) or {}).items()}
            for kind in ("requests", "limits") if cfg["resources"].get(kind)
        }
    if cfg.get("workdir"):
        container["workingDir"] = str(cfg["workdir"])
    if mounts:
        container["volumeMounts"] = mounts
    spec: dict[str, Any] = {"restartPolicy": restart_policy, "containers": [container]}
    if vols:
        spec["volumes"] = vols
    if cfg.get("service_account"):
        spec["serviceAccountName"] = str(cfg["service_account"])
    if cfg.get("image_pull_secrets"):
        spec["imagePullSecrets"] = [{"name": str(s)} for s in cfg["image_pull_secrets"]]
    if cfg.get("node_selector"):
        spec["nodeSelector"] = {str(k): str(v) for k, v in cfg["node_selector"].items()}
    if cfg.get("tolerations"):
        spec["tolerations"] = list(cfg["tolerations"])
    return spec


def _job_spec(cfg: Mapping[str, Any], lbls: Mapping[str, str], **pod: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backoffLimit": int(cfg.get("backoff_limit", cfg.get("retries", 0)) or 0),
        "template": {"metadata": {"labels": dict(lbls)}, "spec": pod_spec(cfg, **pod)},
    }
    if cfg.get("ttl_seconds_after_finished") is not None:
        spec["ttlSecondsAfterFinished"] = int(cfg["ttl_seconds_after_finished"])
    if cfg.get("active_deadline_seconds") is not None:
        spec["activeDeadlineSeconds"] = int(cfg["active_deadline_seconds"])
    return spec


def job(name: str, cfg: Mapping[str, Any], *, command: Sequence[str], run_id: str | None = None,
        step: str | None = None, env: Mapping[str, str] | None = None,
        volumes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ``batch/v1`` Job running ``command`` once (``backoffLimit`` retries)."""
    lbls = labels(cfg, run_id=run_id, step=step)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(k8s_name(name), cfg, lbls),
        "spec": _job_spec(cfg, lbls, command=command, env=env, volumes=volumes),
    }


def cron_job(name: str, cfg: Mapping[str, Any], *, schedule: str, command: Sequence[str],
             env: Mapping[str, str] | None = None, volumes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ``batch/v1`` CronJob running ``command`` on ``schedule`` (cron syntax), never overlapping."""
    if len(str(schedule).split()) != 5 and not str(schedule).startswith("@"):
        raise UsageError(f"CronJob schedule {schedule!r} must have five cron fields, e.g. '0 3 * * *'.")
    lbls = labels(cfg, component="schedule")
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(k8s_name(name, limit=52), cfg, lbls),
        "spec": {
            "schedule": str(schedule),
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": dict(lbls)},
                "spec": _job_spec(cfg, lbls, command=command, env=env, volumes=volumes),
            },
        },
    }


def pvc(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A ``v1`` PersistentVolumeClaim from ``cfg['pvc']`` (name, size, storage_class, access_modes)."""
    opts = cfg.get("pvc") or {}
    if not opts.get("name"):
        raise UsageError("backend.kubernetes.pvc needs a 'name' (and a 'size', e.g. 100Gi).")
    spec: dict[str, Any] = {
        "accessModes": list(opts.get("access_modes") or ["ReadWriteOnce"]),
        "resources": {"requests": {"storage": str(opts.get("size", "10Gi"))}},
    }
    if opts.get("storage_class"):
        spec["storageClassName"] = str(opts["storage_class"])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(k8s_name(opts["name"]), cfg, labels(cfg, component="storage")),
        "spec": spec,
    }


def config_map(name: str, cfg: Mapping[str, Any], data: Mapping[str, str], *,
               run_id: str | None = None, step: str | None = None) -> dict[str, Any]:
    """A ``v1`` ConfigMap holding text files (recipes, invocations); never secrets."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(k8s_name(name), cfg, labels(cfg, run_id=run_id, step=step, component="config")),
        "data": {str(k): str(v) for k, v in data.items()},
    }


def dask_cluster(cfg: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """A ``kubernetes.dask.org/v1`` DaskCluster (scheduler + one worker group) for dask-kubernetes.

    Uses ``cfg`` keys: ``name``, ``namespace``, ``image``, ``n_workers``, ``resources``, ``env``,
    ``secret_env``, ``volumes``, ``threads_per_worker``, ``idle_timeout``, ``scheduler_service_type``.
    """
    name = k8s_name(name or cfg.get("name") or "radioflow-dask", limit=53)  # + "-scheduler" <= 63
    image = str(cfg.get("image") or DEFAULT_IMAGE)
    env = env_vars(cfg)
    vols, mounts = _volumes(cfg)
    resources = {
        kind: {k: str(v) for k, v in (cfg.get("resources", {}).get(kind) or {}).items()}
        for kind in ("requests", "limits") if (cfg.get("resources") or {}).get(kind)
    }
    threads = int(cfg.get("threads_per_worker", 1))

    def container(cname: str, args: list[str], ports: list[dict[str, Any]]) -> dict[str, Any]:
        c: dict[str, Any] = {"name": cname, "image": image, "args": args, "ports": ports}
        if env:
            c["env"] = env
        if resources:
            c["resources"] = resources
        if mounts:
            c["volumeMounts"] = mounts
        return c

    def pod(c: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {"containers": [c]}
        if vols:
            spec["volumes"] = vols
        if cfg.get("service_account"):
            spec["serviceAccountName"] = str(cfg["service_account"])
        return spec

    scheduler = container(
        "scheduler", ["dask-scheduler", "--host", "0.0.0.0"],
        [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
         {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
    )
    scheduler["readinessProbe"] = {"httpGet": {"port": "http-dashboard", "path": "/health"},
                                   "initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 300}
    worker = container(
        "worker", ["dask-worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", str(threads),
                   "--dashboard", "--dashboard-address", "8788"],
        [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
    )
    lbls = labels(cfg, component="dask")
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": _metadata(name, cfg, lbls),
        "spec": {
            "idleTimeout": int(cfg.get("idle_timeout", 0)),
            "worker": {"replicas": int(cfg.get("n_workers", 2)), "spec": pod(worker)},
            "scheduler": {
                "spec": pod(scheduler),
                "service": {
                    "type": str(cfg.get("scheduler_service_type", "ClusterIP")),
                    "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                    "ports": [
                        {"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                        {"name": "http-dashboard", "protocol": "TCP", "port": 8787, "targetPort": "http-dashboard"},
                    ],
                },
            },
        },
    }


def dockerfile(cfg: Mapping[str, Any] | None = None) -> str:
    """The runtime image: python + wsclean/casacore tools + radioflow (``package``: pip spec, default the build context)."""
    cfg = cfg or {}
    base = str(cfg.get("base_image", "python:3.11-slim-bookworm"))
    spec = str(cfg.get("package", "/opt/radioflow"))
    return f"""\
# radioflow runtime image: one image for Jobs, Dask scheduler/workers and Lithops k8s workers.
FROM {base}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 OMP_NUM_THREADS=1
RUN apt-get update \\
 && apt-get install -y --no-install-recommends wsclean casacore-tools tini \\
 && rm -rf /var/lib/apt/lists/*
COPY . /opt/radioflow
RUN pip install "{spec}"
RUN useradd --create-home --uid 1000 radioflow && mkdir -p /data /scratch && chown radioflow /data /scratch
USER 1000
WORKDIR /data
ENTRYPOINT ["tini", "--"]
CMD ["radioflow", "--help"]
"""


class _PlainDumper(yaml.SafeDumper):
    """Safe dumper without anchors/aliases: shared sub-objects are written out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(manifests: Iterable[Mapping[str, Any]]) -> str:
    """Manifests as one multi-document YAML text (no YAML anchors, key order kept)."""
    return yaml.dump_all([dict(m) for m in manifests], Dumper=_PlainDumper, sort_keys=False,
                         default_flow_style=False)


def scheduler_address(cluster: Mapping[str, Any]) -> str:
    """In-cluster address of a DaskCluster's scheduler (the operator's ``<name>-scheduler`` Service)."""
    meta = cluster["metadata"]
    namespace = meta.get("namespace", "default")
    return f"tcp://{meta['name']}-scheduler.{namespace}.svc.cluster.local:8786"


def write_manifests(path: str | Path, manifests: Iterable[Mapping[str, Any]]) -> Path:
    """Write manifests to ``path`` as multi-document YAML, atomically."""
    return write_text(path, to_yaml(manifests))


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp sibling, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
