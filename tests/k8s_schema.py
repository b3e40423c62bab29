"""Checks of rendered Kubernetes manifests shared by the tests: ``kubernetes-validate --strict``
for built-in kinds, and the dask-kubernetes CRD schema (made strict) for DaskCluster."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask_kubernetes
import yaml


def crd_schema(kind: str) -> dict:
    """The openAPIV3Schema of a dask-kubernetes CRD, made strict (unknown fields rejected, as
    ``kubectl apply --validate=strict`` does)."""
    path = Path(dask_kubernetes.__file__).parent / "operator/deployment/helm/dask-kubernetes-operator/crds" / f"{kind}.yaml"
    schema = yaml.safe_load(path.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def strict(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for value in node.values():
                strict(value)
        elif isinstance(node, list):
            for value in node:
                strict(value)

    strict(schema["properties"]["spec"])
    return schema


def validate_strict(paths: list[Path]) -> subprocess.CompletedProcess:
    """``kubernetes-validate --strict`` on manifest files."""
    exe = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(exe), "--strict", *map(str, paths)], capture_output=True, text=True)
