"""DaskBackend on a real LocalCluster and on a real `dask scheduler` + `dask worker` processes."""
from __future__ import annotations

import hashlib
import os
import signal
import time
import urllib.request

import numpy as np
import pytest
import rf_items

from conftest import free_port, target
from radioflow.backends import get_backend
from radioflow.backends.dask import DaskBackend
from radioflow.errors import UsageError
from radioflow.invoke import Invocation

pytestmark = pytest.mark.timeout(300)  # an engine hang fails the test instead of the run


def items(tmp_path, n=8, delay=0.0):
    return [
        Invocation(step=f"item-{i}", cab={"name": "compute"},
                   params={"seed": i, "out": str(tmp_path / f"out-{i}.bin"), "delay": delay})
        for i in range(n)
    ]


def expected_sha(seed):
    data = np.abs(np.fft.rfft(np.random.default_rng(seed).standard_normal(4096))) ** 2
    return hashlib.sha256(data.astype("<f8").tobytes() + bytes([10]) * 64).hexdigest()


@pytest.fixture
def fake(local_dask):
    with target(local_dask, "rf_items.fake_execute"):
        yield local_dask


def test_map_runs_in_order_on_two_worker_processes(fake, tmp_path):
    results = fake.map(items(tmp_path))
    assert [r.step for r in results] == [f"item-{i}" for i in range(8)]
    assert all(r.ok for r in results)
    for i, r in enumerate(results):
        assert r.outputs["sha256"] == expected_sha(i)
        assert hashlib.sha256((tmp_path / f"out-{i}.bin").read_bytes()).hexdigest() == expected_sha(i)
    assert os.getpid() not in {r.outputs["pid"] for r in results}
    workers = fake.client.scheduler_info()["workers"].values()
    assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers)
    assert all(w["host"] == "127.0.0.1" for w in workers)


def test_run_single(fake, tmp_path):
    r = fake.run(items(tmp_path, 1)[0])
    assert r.ok and r.outputs["sha256"] == expected_sha(0)


def test_failed_item_is_retried_then_succeeds(local_dask, tmp_path):
    with target(local_dask, "rf_items.flaky_execute"):
        r = local_dask.run(Invocation(step="flaky", cab={}, params={"marker": str(tmp_path / "m")}))
    assert r.ok and r.outputs == {"attempts": 2}


def test_failed_item_after_retries_carries_error_and_log(local_dask, tmp_path):
    counter = tmp_path / "count"
    with target(local_dask, "rf_items.failing_execute"):
        ok_and_bad = local_dask.map([Invocation(step="bad", cab={}, params={"counter": str(counter)})])
    (r,) = ok_and_bad
    assert not r.ok
    assert r.returncode == 7 and r.error == "cab exited with code 7" and r.log == "cab said: boom\n"
    assert counter.read_text() == "xx"  # first attempt + retries=1


def test_raising_item_becomes_failed_result_with_traceback(local_dask):
    with target(local_dask, "rf_items.raising_execute"):
        (r,) = local_dask.map([Invocation(step="oops", cab={}, params={})])
    assert not r.ok
    assert r.error.startswith("ValueError: bad value in oops")
    assert "Traceback" in r.log and "raising_execute" in r.log


def test_dask_arrays_inside_a_step_use_the_same_cluster(local_dask):
    with target(local_dask, "rf_items.nested_execute"):
        # More items than worker threads: the nested computes must not deadlock the cluster.
        results = local_dask.map([Invocation(step=f"n{i}", cab={}, params={}) for i in range(4)])
    address = local_dask.client.scheduler.address
    assert [r.outputs["total"] for r in results] == [160000.0] * 4
    assert {r.outputs["scheduler"] for r in results} == {address}


def test_dashboard_link_serves_the_dashboard(local_dask):
    link = local_dask.dashboard_link
    assert link.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(link, timeout=10) as resp:
        assert resp.status == 200


def test_ctrl_c_cancels_outstanding_futures(local_dask):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with target(local_dask, "rf_items.sleep_execute"), pytest.raises(KeyboardInterrupt):
            local_dask.map([Invocation(step=f"s{i}", cab={}, params={"seconds": 3}) for i in range(6)])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    deadline = time.time() + 10
    remaining = None
    while time.time() < deadline:
        remaining = local_dask.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if remaining == 0:
            break
        time.sleep(0.1)
    assert remaining == 0


def test_unreachable_scheduler_is_a_usage_error():
    with pytest.raises(UsageError, match="backend.dask.address"):
        DaskBackend({"address": f"tcp://127.0.0.1:{free_port()}", "connect_timeout": "1s"})


def test_external_scheduler_and_workers(external_dask, tmp_path):
    backend = get_backend("dask", {"backend": {"select": "dask", "dask": {"address": external_dask.address,
                                                                         "show_dashboard": False}}})
    assert isinstance(backend, DaskBackend) and backend._cluster is None
    backend._target = "rf_items.fake_execute"
    try:
        results = backend.map(items(tmp_path))
    finally:
        backend.close()
    assert [r.outputs["sha256"] for r in results] == [expected_sha(i) for i in range(8)]
    assert len({r.outputs["pid"] for r in results}) == 2
    assert all(p.poll() is None for p in external_dask.workers)  # close() leaves the cluster alone


def test_sigkill_of_a_worker_mid_scatter_is_survived(external_dask, tmp_path):
    backend = DaskBackend({"address": external_dask.address, "show_dashboard": False})
    backend._target = "rf_items.fake_execute"
    victim = external_dask.workers[0]
    killed_at = []
    import threading

    def kill_when_busy():
        deadline = time.time() + 20
        while time.time() < deadline:
            busy = backend.client.processing()
            if sum(len(v) for v in busy.values()) >= 2:
                time.sleep(0.3)
                os.kill(victim.pid, signal.SIGKILL)
                killed_at.append(time.time())
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        results = backend.map(items(tmp_path, 8, delay=0.8))
        finished_at = time.time()
    finally:
        killer.join()
        backend.close()
    assert victim.wait(timeout=5) == -signal.SIGKILL
    assert killed_at and killed_at[0] < finished_at  # killed mid-scatter
    assert all(r.ok for r in results)
    assert [r.outputs["sha256"] for r in results] == [expected_sha(i) for i in range(8)]
    for i in range(8):
        assert hashlib.sha256((tmp_path / f"out-{i}.bin").read_bytes()).hexdigest() == expected_sha(i)
    assert sum(r.outputs["pid"] != victim.pid for r in results) >= 4  # the survivor took over
    external_dask.workers[0] = external_dask.start_worker()


def test_accounting_is_measured_on_the_dask_worker(local_dask, tmp_path):
    """CPU, peak memory and bytes written are measured in the worker process and come back."""
    invs = [Invocation(step=f"w{i}", cab=rf_items.WORK_CAB, workdir=str(tmp_path),
                       params={"out": str(tmp_path / f"w{i}.bin"), "cpu": 0.3, "alloc_mb": 120, "write_mb": 8})
            for i in range(2)]
    results = local_dask.map(invs)
    assert all(r.ok for r in results), [r.error for r in results]
    for r in results:
        u = r.usage
        assert 0.3 <= u["cpu_seconds"] < 3.0
        assert u["peak_memory"] >= 120 * 2 ** 20
        assert u["bytes_written"] >= 8 * 2 ** 20
        assert u["invocations"] == 1
