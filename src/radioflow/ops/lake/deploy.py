"""Kubernetes pieces of a run that feeds the datalake: sized volumes, requests, the ingestor.

``radioflow k8s render RECIPE --ingest`` adds, from the recipe's estimate
(:mod:`radioflow.ops.estimate`):

* memory requests/limits of the Job/CronJob container (peak × 1.0 / × 1.25) unless configured;
* the working PVC sized for everything the run writes, the ingest-area PVC (ReadWriteMany,
  shared with the ingestor) for what it keeps, both unless sized by hand;
* the run writing its products to ``/ingest/staging/<namespace>`` (the recipe input marked
  ``metadata: {output_dir: true}``; the namespace from the input marked ``lake_namespace``);
* the ingestor: a Deployment running ``radioflow lake ingest /ingest --watch``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from ...errors import UsageError
from .. import deploy

INGEST_MOUNT = "/ingest"
GIB = 2**30


def gib(nbytes: float, factor: float = 1.0, minimum: int = 1) -> str:
    """A Kubernetes quantity in whole Gi, at least ``minimum``."""
    return f"{max(minimum, math.ceil(nbytes * factor / GIB))}Gi"


def resources(peak_memory: int) -> dict[str, Any]:
    """Container requests/limits from an estimated peak memory."""
    return {"requests": {"memory": gib(peak_memory)}, "limits": {"memory": gib(peak_memory, 1.25)}}


def ingest_claim(name: str) -> str:
    return deploy.k8s_name(name, "ingest")


def ingest_volume(name: str) -> dict[str, Any]:
    """The ingest-area volume entry for ``deploy`` pod specs."""
    return {"name": "ingest", "claim": ingest_claim(name), "mount": INGEST_MOUNT}


def output_dir_input(inputs: Mapping[str, Any]) -> tuple[str, str]:
    """(output-dir input, its env var or name) of a recipe; a clear error if none is marked."""
    for n, p in inputs.items():
        if (p.metadata or {}).get("output_dir"):
            return n, p.env or n
    raise UsageError("--ingest needs a recipe input marked 'metadata: {output_dir: true}' (where products go).")


def lake_namespace(inputs: Mapping[str, Any], given: Mapping[str, str]) -> str:
    """The namespace the run's products are ingested into (given value, else the input's default)."""
    for n, p in inputs.items():
        if (p.metadata or {}).get("lake_namespace"):
            return str(given.get(p.env or n, given.get(n, p.default)))
    raise UsageError("--ingest needs a recipe input marked 'metadata: {lake_namespace: true}'.")


def ingest_pvc(name: str, cfg: Mapping[str, Any], size: str) -> dict[str, Any]:
    """The ingest area: ReadWriteMany, mounted by the runs and the ingestor."""
    opts = {**cfg, "pvc": {**(cfg.get("pvc") or {}), "name": ingest_claim(name), "size": size,
                           "access_modes": ["ReadWriteMany"]}}
    return deploy.pvc(opts)


def ingestor_deployment(name: str, cfg: Mapping[str, Any], *, interval: float = 5.0) -> dict[str, Any]:
    """An ``apps/v1`` Deployment (one replica: the ingestor takes a lock) watching the ingest area."""
    lbls = deploy.labels(cfg, component="ingestor")
    command = ["radioflow", "lake", "ingest", INGEST_MOUNT, "--watch", "--interval", f"{interval:g}"]
    pod_cfg = {k: v for k, v in cfg.items() if k not in ("resources", "volumes", "workdir")}
    pod = deploy.pod_spec(pod_cfg, command=command, volumes=[ingest_volume(name)], restart_policy="Always")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deploy.k8s_name(name, "ingestor"), "labels": dict(lbls),
                     **({"namespace": str(cfg["namespace"])} if cfg.get("namespace") else {})},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(lbls)},
            "template": {"metadata": {"labels": dict(lbls)}, "spec": pod},
        },
    }


def ingest_setup(source: str, name: str, opts: dict[str, Any], cli_args: list[str], env: dict[str, str],
                 *, ingest_size: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Adapt a recipe's Job options and environment for ingestion; returns (options, extra volumes,
    extra manifests by file name). ``env`` is updated with the products' directory."""
    from ...recipe.load import load_documents
    from ...recipe.validate import compile_recipe
    from ...run.api import choose_recipe
    from ..estimate import estimate

    rname = cli_args[0] if cli_args and not cli_args[0].startswith("-") and "=" not in cli_args[0] else None
    doc = load_documents([source])
    rdef = compile_recipe(doc, choose_recipe(doc, rname), check_params=False)
    out_input, out_var = output_dir_input(rdef.inputs)
    ns = lake_namespace(rdef.inputs, env)
    if out_var in env or any(a.startswith(f"{out_input}=") for a in cli_args):
        raise UsageError(f"--ingest writes the products to {INGEST_MOUNT}/staging/{ns}; do not set {out_var} too.")
    env[out_var] = f"{INGEST_MOUNT}/staging/{ns}"
    est = estimate([source, *cli_args], environ=env)
    opts = dict(opts)
    if not opts.get("resources") and est.peak_memory:
        opts["resources"] = resources(est.peak_memory)
    opts["pvc"] = {**(opts.get("pvc") or {}), "size": gib(sum(est.made.values()), 1.2)}
    files = {
        "ingest-pvc.yaml": ingest_pvc(name, opts, ingest_size or gib(sum(est.kept.values()), 2.0)),
        "ingestor.yaml": ingestor_deployment(name, opts),
    }
    return opts, [ingest_volume(name)], files
