"""LocalBackend: in-process run, process-pool map, crashes, retries; get_backend factory."""
from __future__ import annotations

import os

import pytest

from radioflow.backends import backend_options, get_backend
from radioflow.backends.base import Backend
from radioflow.backends.local import LocalBackend
from radioflow.errors import UsageError
from radioflow.invoke import Invocation

SLEEPY = {
    "name": "sleepy", "flavour": "python-code",
    "command": "import os, time\ntime.sleep(0.4)\npid = os.getpid()\nsquare = x * x\n",
    "inputs": {"x": {"dtype": "int"}}, "outputs": {"pid": {"dtype": "int"}, "square": {"dtype": "int"}},
}
CRASHY = {
    "name": "crashy", "flavour": "python-code",
    "command": "import os, time\ntime.sleep(0.05 * x)\nif x == crash_on:\n    os._exit(7)\ny = x + 100\n",
    "inputs": {"x": {"dtype": "int"}, "crash_on": {"dtype": "int"}}, "outputs": {"y": {"dtype": "int"}},
}


@pytest.fixture(scope="module")
def backend():
    b = LocalBackend(max_workers=2)
    yield b
    b.close()


def test_is_a_backend():
    assert isinstance(LocalBackend(), Backend)
    assert LocalBackend().max_workers == (os.cpu_count() or 1)


def test_run_is_in_process(tmp_path, backend):
    res = backend.run(Invocation("one", SLEEPY, {"x": 3}, log_path=str(tmp_path / "one.log")))
    assert res.ok and res.outputs == {"pid": os.getpid(), "square": 9}
    assert (tmp_path / "one.log").read_text() == res.log


def test_single_item_map_runs_in_process():
    with LocalBackend(max_workers=2) as fresh:
        [res] = fresh.map([Invocation("one", SLEEPY, {"x": 2})])
        assert res.outputs["pid"] == os.getpid()
        assert fresh._pool is None
        assert fresh.map([]) == []


def test_map_eight_ordered_and_parallel(tmp_path, backend):
    invs = [Invocation(f"s{i}", SLEEPY, {"x": i}, log_path=str(tmp_path / f"s{i}.log")) for i in range(8)]
    backend.map([Invocation(f"w{i}", SLEEPY, {"x": i}) for i in range(2)])  # start the workers
    results = backend.map(invs)
    assert [r.step for r in results] == [f"s{i}" for i in range(8)]
    assert [r.outputs["square"] for r in results] == [i * i for i in range(8)]
    pids = {r.outputs["pid"] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    spans = sorted((r.started, r.finished) for r in results)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # some items overlapped in time
    assert all((tmp_path / f"s{i}.log").read_text() == results[i].log for i in range(8))


def test_worker_killed_with_os_exit_becomes_failed_result(tmp_path, backend):
    invs = [Invocation(f"c{i}", CRASHY, {"x": i, "crash_on": 2}, log_path=str(tmp_path / f"c{i}.log"))
            for i in range(5)]
    results = backend.map(invs)
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert [r.outputs.get("y") for r in results] == [100, 101, None, 103, 104]
    bad = results[2]
    assert bad.returncode == 7 and "exited abruptly with code 7" in bad.error and "c2" in bad.error
    assert "Traceback" not in bad.error
    assert bad.log.startswith("# step c2: cab crashy") and bad.log.rstrip().endswith(bad.error)
    assert (tmp_path / "c2.log").read_text() == bad.log
    again = backend.map([Invocation(f"d{i}", SLEEPY, {"x": i}) for i in range(3)])  # pool rebuilt
    assert [r.outputs["square"] for r in again] == [0, 1, 4]


def test_retries_rerun_failed_items(tmp_path):
    marker = tmp_path / "attempts"
    cab = {"name": "flaky", "flavour": "python-code",
           "command": ("import os\nwith open(path, 'a') as f:\n    f.write(step)\n"
                       "n = open(path).read().count(step)\nif n < 2:\n    raise RuntimeError('first try fails')\n"
                       "tries = n\n"),
           "inputs": {"path": {}, "step": {}}, "outputs": {"tries": {"dtype": "int"}}}
    invs = [Invocation(s, cab, {"path": str(marker) + s, "step": s}) for s in ("a", "b")]
    with LocalBackend(max_workers=2, retries=1) as b:
        assert [r.outputs.get("tries") for r in b.map(invs)] == [2, 2]
    for inv in invs:
        os.remove(inv.params["path"])
    with LocalBackend(max_workers=2) as b:
        results = b.map(invs)
        assert [r.ok for r in results] == [False, False]
        assert "first try fails" in results[0].error
        assert b.run(invs[0]).ok  # second attempt on disk succeeds


def test_get_backend_local_and_options():
    b = get_backend("local", {"backend": {"select": "local", "retries": 2, "local": {"max_workers": 3}}})
    assert isinstance(b, LocalBackend) and b.max_workers == 3 and b.retries == 2
    assert backend_options("dask", {"select": "dask", "retries": 1, "dask": {"n_workers": 2}}) == {"retries": 1, "n_workers": 2}
    assert backend_options("dask", {"n_workers": 4}) == {"n_workers": 4}
    assert get_backend("LOCAL", {}).name == "local"


def test_get_backend_unknown_name_is_usage_error():
    with pytest.raises(UsageError, match="Unknown backend 'slurm'.*local, dask, lithops, kubernetes"):
        get_backend("slurm", {})


def test_sigkilled_worker_reports_the_signal(backend):
    cab = {"name": "kill", "flavour": "python-code",
           "command": "import os, signal\nif x == 1:\n    os.kill(os.getpid(), signal.SIGKILL)\ny = x\n",
           "inputs": {"x": {}}, "outputs": {"y": {}}}
    results = backend.map([Invocation(f"k{i}", cab, {"x": i}) for i in range(3)])
    assert [r.outputs.get("y") for r in results] == [0, None, 2]
    assert results[1].returncode == -9 and "killed by signal SIGKILL" in results[1].error


def test_get_backend_imports_remote_backends_lazily():
    k8s = get_backend("kubernetes", {"backend": {"select": "kubernetes", "kubernetes": {"namespace": "rf-test"}}})
    assert k8s.name == "kubernetes" and k8s.namespace == "rf-test"


def test_unpicklable_output_is_a_failed_item_not_a_crash(backend):
    cab = {"name": "lam", "flavour": "python-code", "command": "y = (lambda: 1) if x else 5\n",
           "inputs": {"x": {}}, "outputs": {"y": {}}}
    results = backend.map([Invocation(f"p{i}", cab, {"x": i}) for i in range(2)])
    assert results[0].ok and results[0].outputs == {"y": 5}
    assert not results[1].ok and "picklable" in results[1].error


def test_accounting_in_pool_workers_and_retries_counted(tmp_path, backend):
    """Pool workers measure their own CPU, peak memory and writes; a retried item counts every attempt."""
    import rf_items

    invs = [Invocation(step=f"w{i}", cab=rf_items.WORK_CAB, workdir=str(tmp_path),
                       params={"out": str(tmp_path / f"w{i}.bin"), "cpu": 0.2, "alloc_mb": 100, "write_mb": 5})
            for i in range(2)]
    for r in backend.map(invs):
        assert r.ok, r.error
        assert 0.2 <= r.usage["cpu_seconds"] < 3.0
        assert r.usage["peak_memory"] >= 100 * 2 ** 20 and r.usage["bytes_written"] >= 5 * 2 ** 20
        assert r.usage["invocations"] == 1
    marker = tmp_path / "tries"
    cab = {"name": "flaky", "flavour": "python-code",
           "command": "with open(path, 'a') as f:\n    f.write('x')\nif open(path).read() != 'xx':\n    raise RuntimeError('once')\n",
           "inputs": {"path": {}}}
    with LocalBackend(max_workers=1, retries=2) as b:
        r = b.run(Invocation("flaky", cab, {"path": str(marker)}))
    assert r.ok and r.usage["invocations"] == 2
