"""LithopsBackend: the localhost executor, and localhost compute with storage on a real
S3-compatible server on 127.0.0.1 (the ``s3_server`` fixture of tests/conftest.py)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import rf_items

from radioflow.backends import get_backend
from radioflow.backends.lithops import LithopsBackend, lithops_config
from radioflow.errors import UsageError
from radioflow.invoke import Invocation

pytestmark = pytest.mark.timeout(300)  # an engine hang fails the test instead of the run


NPARTS = 4  # objects in the bucket test (the loopback S3 server takes ~0.4 s per request)


def expected_sha(seed, n=4096):
    data = np.abs(np.fft.rfft(np.random.default_rng(seed).standard_normal(n))) ** 2
    return hashlib.sha256(data.astype("<f8").tobytes() + bytes([10]) * 64).hexdigest()


@pytest.fixture(scope="module")
def local_lithops():
    backend = get_backend("lithops", {"backend": {"select": "lithops", "retries": 1, "lithops": {"workers": 2}}})
    yield backend
    backend.close()


def test_map_runs_python_cabs_through_execute(local_lithops, tmp_path):
    invs = [Invocation(step=f"c{i}", cab=rf_items.COMPUTE_CAB,
                       params={"seed": i, "n": 4096, "out": str(tmp_path / f"o{i}.bin")}, workdir=str(tmp_path))
            for i in range(8)]
    results = local_lithops.map(invs)
    assert [r.step for r in results] == [f"c{i}" for i in range(8)]
    assert all(r.ok for r in results), [r.error for r in results]
    for i, r in enumerate(results):
        assert r.outputs["sha256"] == expected_sha(i)
        assert hashlib.sha256((tmp_path / f"o{i}.bin").read_bytes()).hexdigest() == expected_sha(i)
    assert os.getpid() not in {r.outputs["pid"] for r in results}


def test_failed_item_is_retried_then_reported(local_lithops, tmp_path):
    local_lithops._target = "rf_items.flaky_execute"
    try:
        (flaky,) = local_lithops.map([Invocation(step="flaky", cab={}, params={"marker": str(tmp_path / "m")})])
        local_lithops._target = "rf_items.failing_execute"
        (bad,) = local_lithops.map([Invocation(step="bad", cab={}, params={"counter": str(tmp_path / "n")})])
    finally:
        local_lithops._target = "radioflow.invoke.execute.execute"
    assert flaky.ok and flaky.outputs == {"attempts": 2}
    assert not bad.ok and bad.returncode == 7 and bad.log == "cab said: boom\n"
    assert bad.error == "cab exited with code 7"
    assert (tmp_path / "n").read_text() == "xx"


def test_batches_share_an_activation_and_a_raising_item_sinks_only_itself(local_lithops, tmp_path):
    invs = [Invocation(step=f"b{i}", cab=rf_items.COMPUTE_CAB,
                       params={"seed": i, "n": 256, "out": str(tmp_path / f"b{i}.bin")}, workdir=str(tmp_path))
            for i in range(8)]
    local_lithops.batch_size = 4
    try:
        results = local_lithops.map(invs)
        local_lithops._target = "rf_items.raising_execute"
        raised = local_lithops.map(invs[:3])
    finally:
        local_lithops.batch_size = "auto"
        local_lithops._target = "radioflow.invoke.execute.execute"
    assert all(r.ok for r in results)
    assert len({r.outputs["pid"] for r in results[:4]}) == 1 and len({r.outputs["pid"] for r in results[4:]}) == 1
    assert results[0].outputs["pid"] != results[4].outputs["pid"]
    assert [r.error for r in raised] == [f"ValueError: bad value in b{i}" for i in range(3)]
    assert all("Traceback" in r.log for r in raised)


def test_a_killed_activation_is_retried(local_lithops, tmp_path):
    local_lithops._target = "rf_items.dying_execute"
    try:
        (r,) = local_lithops.map([Invocation(step="dies", cab={}, params={"marker": str(tmp_path / "k")})])
    finally:
        local_lithops._target = "radioflow.invoke.execute.execute"
    assert (tmp_path / "k").read_text() == "killed"
    assert r.ok and r.outputs["survived"] is True


def test_a_cab_failure_through_execute_is_a_failed_result(local_lithops, tmp_path):
    cab = {**rf_items.COMPUTE_CAB, "command": "rf_items.does_not_exist"}
    (r,) = local_lithops.map([Invocation(step="missing", cab=cab, params={"seed": 1, "out": str(tmp_path / "x")},
                                         workdir=str(tmp_path))])
    assert not r.ok and "has no function 'does_not_exist'" in r.error


def test_data_in_the_payload_is_refused(local_lithops):
    big = Invocation(step="fat", cab=rf_items.COMPUTE_CAB, params={"seed": 1, "out": "x", "vis": np.zeros(300_000)})
    with pytest.raises(UsageError, match="Step 'fat' passes 24001.* bytes .* move by URL"):
        local_lithops.map([big])


def test_lithops_config_defaults_and_s3():
    cfg = lithops_config({})
    assert cfg["lithops"]["backend"] == "localhost" and cfg["lithops"]["storage"] == "localhost"
    assert cfg["localhost"]["version"] == 1 and os.path.isabs(cfg["localhost"]["runtime"])
    env = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    k8s = lithops_config({"compute": "k8s", "storage": "minio", "workers": 16, "storage_bucket": "rf",
                          "k8s": {"runtime": "ghcr.io/x/rf:1"}}, s3={"endpoint_url": "http://minio:9000"}, environ=env)
    assert k8s["lithops"] == {"backend": "k8s", "storage": "minio", "log_level": "WARNING"}
    assert k8s["k8s"] == {"max_workers": 16, "runtime": "ghcr.io/x/rf:1"}
    assert k8s["minio"] == {"endpoint": "http://minio:9000", "access_key_id": "AK", "secret_access_key": "SK",
                            "storage_bucket": "rf"}
    import copy

    from lithops.config import default_config, extract_storage_config

    checked = default_config(config_data=copy.deepcopy(k8s))  # Lithops' own loader accepts it
    assert checked["lithops"]["mode"] == "serverless" and checked["k8s"]["runtime"] == "ghcr.io/x/rf:1"
    assert extract_storage_config(checked)["minio"]["endpoint"] == "http://minio:9000"
    with pytest.raises(UsageError, match="no S3 endpoint"):
        lithops_config({"storage": "ceph"}, environ=env)
    with pytest.raises(UsageError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        lithops_config({"storage": "minio", "endpoint": "http://x:9000"}, environ={})


def test_map_over_datasets_in_a_bucket_writes_results_back(s3_server, s3_prefix):
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_server.endpoint, skip_instance_cache=True)
    rng = np.random.default_rng(7)
    inputs = []
    for i in range(NPARTS):
        arr = rng.standard_normal(2048)
        arr[::97] = np.frombuffer(b"\n\n\n\n\n\n\n\n", dtype="<f8")[0]  # newline bytes inside the data
        raw = arr.astype("<f8").tobytes()
        assert raw.count(b"\n") >= 64
        fs.pipe(f"{s3_prefix}/in/part-{i:03d}.bin", raw)
        inputs.append(raw)
    backend = LithopsBackend({"storage": "minio", "endpoint": s3_server.endpoint, "storage_bucket": s3_server.bucket,
                              "workers": 2, "retries": 1})
    try:
        assert backend.executor.config["lithops"]["storage"] == "minio"
        invs = [Invocation(step=f"part-{i:03d}", cab=rf_items.S3_CAB,
                           params={"src": f"{s3_prefix}/in/part-{i:03d}.bin", "dst": f"{s3_prefix}/out/part-{i:03d}.bin",
                                   "endpoint": s3_server.endpoint})
                for i in range(NPARTS)]
        results = backend.map(invs)
    finally:
        backend.close()
    assert all(r.ok for r in results), [r.error for r in results]
    for i, (raw, r) in enumerate(zip(inputs, results)):
        assert r.outputs["in_sha256"] == hashlib.sha256(raw).hexdigest() and r.outputs["nbytes"] == len(raw)
        want = (np.abs(np.fft.rfft(np.frombuffer(raw, dtype="<f8"))) ** 2).astype("<f8").tobytes()
        got = fs.cat(f"{s3_prefix}/out/part-{i:03d}.bin")
        assert got == want and r.outputs["out_sha256"] == hashlib.sha256(want).hexdigest()
    # Lithops kept its own job data in the bucket, outside the dataset prefix
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{s3_prefix}/out")) == [f"part-{i:03d}.bin" for i in range(NPARTS)]


def test_a_run_never_joins_a_lithops_session_it_inherited():
    """Lithops exports its session id and executor counter; a `radioflow run -b lithops` spawned by
    a process that used Lithops inherited them, so successive runs got the same executor ids and
    one run's cleaner deleted the next one's job files (its map then waited forever)."""
    script = (
        "import os\n"
        "os.environ['__LITHOPS_SESSION_ID'] = 'inherit'\n"
        "os.environ['__LITHOPS_TOTAL_EXECUTORS'] = '2'\n"
        "from radioflow.backends import get_backend\n"
        "b = get_backend('lithops', {'backend': {'select': 'lithops', 'lithops': {'workers': 1}}})\n"
        "print(b.executor.executor_id)\n"
        "b.close()\n"
    )
    ids = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          check=True).stdout.split()[-1] for _ in range(2)]
    assert not any(i.startswith("inherit-") for i in ids), ids
    assert ids[0] != ids[1]


def test_accounting_is_measured_in_the_lithops_worker(local_lithops, tmp_path):
    """CPU, peak memory and bytes written are measured in the function's process and come back."""
    invs = [Invocation(step=f"w{i}", cab=rf_items.WORK_CAB, workdir=str(tmp_path),
                       params={"out": str(tmp_path / f"w{i}.bin"), "cpu": 0.3, "alloc_mb": 120, "write_mb": 8})
            for i in range(2)]
    results = local_lithops.map(invs)
    assert all(r.ok for r in results), [r.error for r in results]
    for r in results:
        u = r.usage
        assert 0.3 <= u["cpu_seconds"] < 3.0
        assert u["peak_memory"] >= 120 * 2 ** 20
        assert u["bytes_written"] >= 8 * 2 ** 20
        assert u["invocations"] == 1 and u["wall_seconds"] >= 0.3
