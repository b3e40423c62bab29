"""Lithops' own configuration file (~/.lithops/config, $LITHOPS_CONFIG_FILE) is honoured when
radioflow's backend.lithops does not choose the compute backend; one that cannot be honoured is
a clear error, never a silent fall-back to localhost (issue 12)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from radioflow.backends.lithops import lithops_config

PROBE = textwrap.dedent("""
    from radioflow.backends import get_backend
    from radioflow.errors import RadioflowError
    try:
        b = get_backend("lithops", {"backend": {"select": "lithops", "lithops": {"workers": 1}}})
    except RadioflowError as exc:
        print("ERROR:", exc)
        raise SystemExit(2)
    print("BACKEND:", b.lithops_config["lithops"]["backend"])
    b.close()
""")


def _probe(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if k != "LITHOPS_CONFIG_FILE"}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**base, **env})


def test_kubernetes_in_home_lithops_config_is_not_silently_replaced_by_localhost(tmp_path):
    home = tmp_path / "home"
    (home / ".lithops").mkdir(parents=True)
    (home / ".lithops" / "config").write_text("lithops:\n  backend: k8s\n  storage: localhost\nk8s:\n  namespace: radio\n")
    r = _probe(tmp_path, HOME=str(home))
    assert "BACKEND: localhost" not in r.stdout, r.stdout   # the reported bug: silently ran on localhost
    assert r.returncode == 2, r.stdout + r.stderr
    assert "k8s" in r.stdout and str(home / ".lithops" / "config") in r.stdout
    assert "Traceback" not in r.stderr


def test_localhost_in_the_lithops_config_file_is_used(tmp_path):
    cfg = tmp_path / "lithops.yaml"
    cfg.write_text("lithops:\n  backend: localhost\n  storage: localhost\n")
    r = _probe(tmp_path, LITHOPS_CONFIG_FILE=str(cfg))
    assert r.returncode == 0 and "BACKEND: localhost" in r.stdout, r.stdout + r.stderr


def test_file_settings_merge_under_radioflows(tmp_path):
    path = str(tmp_path / "config")
    data = {"lithops": {"backend": "k8s", "storage": "minio"},
            "k8s": {"namespace": "radio", "runtime": "ghcr.io/x/rf:1"},
            "minio": {"endpoint": "http://minio:9000", "storage_bucket": "b", "access_key_id": "k",
                      "secret_access_key": "s"}}
    out = lithops_config({"workers": 3}, file_config=(path, data))
    assert out["lithops"]["backend"] == "k8s" and out["lithops"]["storage"] == "minio"
    assert out["k8s"] == {"namespace": "radio", "runtime": "ghcr.io/x/rf:1", "max_workers": 3}
    assert out["minio"]["endpoint"] == "http://minio:9000" and out["minio"]["access_key_id"] == "k"
    # radioflow's own compute choice wins over the file
    out = lithops_config({"compute": "localhost"}, file_config=(path, data))
    assert out["lithops"]["backend"] == "localhost" and out["lithops"]["storage"] == "localhost"


def test_missing_lithops_config_file_named_by_the_environment_is_an_error(tmp_path):
    r = _probe(tmp_path, LITHOPS_CONFIG_FILE=str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "nope.yaml" in r.stdout, r.stdout + r.stderr
