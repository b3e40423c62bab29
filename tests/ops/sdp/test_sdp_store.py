"""The SDP control plane on both configuration databases (SQLite and a real etcd): state machine,
dependency rules, release, cancel, ownership by lease and compare-and-swap under concurrency."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from radioflow.errors import UsageError, ValidationError
from radioflow.ops.sdp import example_path
from radioflow.ops.sdp import operations as ops
from radioflow.ops.sdp.configdb import open_store
from radioflow.ops.sdp.controller import Controller
from radioflow.ops.sdp.schema import load_sbi
from radioflow.ops.sdp.states import TERMINAL, TransitionError, entered, transition
from radioflow.processes import pid_alive


def _sbi(tmp_path, pbs: list[dict[str, Any]], sbi_id: str = "sbi-t-20261204-00000") -> str:
    doc = {"id": sbi_id, "max_length": 60.0, "processing_blocks": pbs}
    path = tmp_path / f"{sbi_id}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _pb(n: int, kind: str = "realtime", name: str = "test_realtime", version: str = "0.2.0",
        deps: list[int] = (), params: dict | None = None) -> dict[str, Any]:
    return {"id": f"pb-t-20261204-{n:05d}", "workflow": {"type": kind, "id": name, "version": version},
            "parameters": params or {}, "dependencies": [{"pb_id": f"pb-t-20261204-{d:05d}", "type": ["none"]}
                                                         for d in deps]}


def _until(ctl: Controller, cond, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        ctl.tick()
        time.sleep(0.1)


def test_state_machine_allows_only_sdp_transitions():
    pb = {"id": "pb", "state": "STARTING", "history": []}
    transition(pb, "WAITING", now=1.0)
    transition(pb, "RUNNING", now=2.0)
    with pytest.raises(TransitionError):
        transition(pb, "WAITING")
    transition(pb, "FINISHED", now=3.0)
    for new in ("RUNNING", "FAILED", "CANCELLED", "STARTING"):
        with pytest.raises(TransitionError):
            transition(pb, new)
    assert [h["state"] for h in pb["history"]] == ["WAITING", "RUNNING", "FINISHED"]
    assert entered(pb, "RUNNING") == 2.0


def test_submit_is_atomic_and_refuses_reused_ids(store_url, tmp_path):
    db = open_store(store_url)
    sbi = ops.submit(db, example_path("sbi-prototype.json"))
    assert [p["id"] for p in db.pbs(sbi["id"])] == sbi["pb_ids"]
    with pytest.raises(ValidationError, match="already exist"):
        ops.submit(db, example_path("sbi-prototype.json"))
    # a new SBI reusing one PB id stores nothing at all
    path = _sbi(tmp_path, [_pb(7), {**_pb(8), "id": sbi["pb_ids"][0]}], "sbi-t-20261204-00009")
    with pytest.raises(ValidationError, match=sbi["pb_ids"][0]):
        ops.submit(db, path)
    assert db.sbi("sbi-t-20261204-00009") is None and db.pb("pb-t-20261204-00007") is None
    db.close()


def test_compare_and_swap_loses_no_update(store_url):
    db = open_store(store_url)
    sbi, pbs = load_sbi(json.loads(example_path("sbi-assign-resources.json").read_text()))
    db.submit(sbi, pbs)
    pb_id = pbs[0]["id"]

    def bump() -> None:
        other = open_store(store_url)
        for _ in range(15):
            other.update_pb(pb_id, lambda p: {**p, "counter": p.get("counter", 0) + 1})
        other.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.require_pb(pb_id)["counter"] == 60
    db.close()


def test_unknown_workflow_or_version_fails_with_the_reason(store_url, tmp_path):
    db = open_store(store_url)
    ops.submit(db, _sbi(tmp_path, [_pb(1, "batch", "batch_imaging", "0.9.0"), _pb(2, "batch", "no_such_thing")]))
    ctl = Controller(db, workdir=str(tmp_path))
    ctl.tick()
    a, b = db.require_pb("pb-t-20261204-00001"), db.require_pb("pb-t-20261204-00002")
    assert a["state"] == b["state"] == "FAILED"
    assert a["reason"] == "workflow batch/batch_imaging has no version 0.9.0 (known: 0.1.0)"
    assert b["reason"].startswith("unknown workflow batch/no_such_thing version 0.2.0")
    assert [h["state"] for h in a["history"]] == ["STARTING", "FAILED"]
    db.close()


def test_realtime_runs_at_once_dependants_wait_and_release_ends_it(store_url, tmp_path):
    db = open_store(store_url)
    sbi_path = _sbi(tmp_path, [_pb(1), _pb(2, "batch", "no_such_batch", deps=[1]),
                               _pb(3, "batch", "batch_imaging", "0.1.0", deps=[2],
                                   params={"buffer_vis": "v", "buffer_img": "i"})])
    ops.submit(db, sbi_path)
    ctl = Controller(db, workdir=str(tmp_path))
    ctl.tick()
    rt = db.require_pb("pb-t-20261204-00001")
    assert rt["state"] == "RUNNING" and pid_alive(rt["pid"])
    # an unknown batch workflow fails at once even before its dependency ends; its dependant then fails
    _until(ctl, lambda: db.require_pb("pb-t-20261204-00003")["state"] == "FAILED")
    assert db.require_pb("pb-t-20261204-00003")["reason"].startswith("dependency pb-t-20261204-00002 is FAILED")
    for _ in range(5):
        ctl.tick()
    assert db.require_pb("pb-t-20261204-00001")["state"] == "RUNNING"
    ops.release(db, "sbi-t-20261204-00000")
    _until(ctl, lambda: db.require_pb("pb-t-20261204-00001")["state"] == "FINISHED")
    rt = db.require_pb("pb-t-20261204-00001")
    assert [h["state"] for h in rt["history"]] == ["STARTING", "RUNNING", "FINISHED"]
    assert entered(rt, "STARTING") <= entered(rt, "RUNNING") <= entered(rt, "FINISHED")
    messages = [line["message"] for line in db.logs(rt["id"])]
    assert "Claimed processing block pb-t-20261204-00001" in messages
    assert "SBI released: ending real-time processing" in messages
    ctl.shutdown()
    db.close()


def test_batch_waits_for_every_dependency_and_fails_when_one_is_cancelled(store_url, tmp_path):
    db = open_store(store_url)
    ops.submit(db, _sbi(tmp_path, [_pb(1), _pb(2), _pb(3, "batch", "batch_imaging", "0.1.0", deps=[1, 2],
                                                     params={"buffer_vis": "v", "buffer_img": "i"})]))
    ctl = Controller(db, workdir=str(tmp_path))
    for _ in range(4):
        ctl.tick()
    assert db.require_pb("pb-t-20261204-00003")["state"] == "WAITING"
    pid = db.require_pb("pb-t-20261204-00002")["pid"]
    # cancel needs the owning controller to act: run it in a thread while the CLI call waits
    stop = threading.Event()
    loop = threading.Thread(target=lambda: [ctl.tick() or time.sleep(0.1) for _ in iter(stop.is_set, True)])
    loop.start()
    t0 = time.time()
    try:
        pb = ops.cancel(db, "pb-t-20261204-00002", wait=10)
    finally:
        stop.set()
        loop.join()
    assert pb["state"] == "CANCELLED" and time.time() - t0 < 5.0
    assert not pid_alive(pid)
    _until(ctl, lambda: db.require_pb("pb-t-20261204-00003")["state"] == "FAILED")
    assert db.require_pb("pb-t-20261204-00003")["reason"] == "dependency pb-t-20261204-00002 is CANCELLED: " \
                                                            "cancelled by the operator"
    assert db.require_pb("pb-t-20261204-00001")["state"] == "RUNNING"   # the other one is untouched
    with pytest.raises(UsageError, match="already ended"):
        ops.cancel(db, "pb-t-20261204-00002")
    ctl.shutdown()
    db.close()


def test_cancel_without_a_controller_is_immediate(store_url, tmp_path):
    db = open_store(store_url)
    ops.submit(db, _sbi(tmp_path, [_pb(1)]))
    pb = ops.cancel(db, "pb-t-20261204-00001", wait=0)
    assert pb["state"] == "CANCELLED" and pb["reason"].startswith("cancelled by the operator")
    db.close()


def test_two_controllers_never_own_one_pb_and_a_lease_hands_over(store_url, tmp_path):
    db = open_store(store_url)
    ops.submit(db, _sbi(tmp_path, [_pb(1), _pb(2), _pb(3)]))
    a = Controller(open_store(store_url), workdir=str(tmp_path), lease_ttl=1.0)
    b = Controller(open_store(store_url), workdir=str(tmp_path), lease_ttl=1.0)
    for _ in range(6):
        a.tick()
        b.tick()
    owners = {p["id"]: p["owner"] for p in db.pbs()}
    assert set(owners.values()) <= {a.ident, b.ident}
    assert not set(a.children) & set(b.children)
    assert len(a.children) + len(b.children) == 3
    # a stops renewing (as if frozen): after its lease expires b takes its PBs over
    taken = set(a.children)
    for child in a.children.values():
        child.proc.kill()
        child.proc.wait()
    a.children.clear()
    time.sleep(1.2)
    for _ in range(3):
        b.tick()
    assert all(db.require_pb(p)["owner"] == b.ident for p in taken)
    assert set(b.children) == {"pb-t-20261204-00001", "pb-t-20261204-00002", "pb-t-20261204-00003"}
    ops.release(db, "sbi-t-20261204-00000")
    _until(b, lambda: all(p["state"] in TERMINAL for p in db.pbs()))
    assert {p["state"] for p in db.pbs()} == {"FINISHED"}
    b.shutdown()
    db.close()


def test_a_buffer_larger_than_the_free_space_fails_the_pb_with_a_clear_reason(store_url, tmp_path):
    db = open_store(store_url)
    huge = 1 << 50   # 1 PiB per buffer
    ops.submit(db, _sbi(tmp_path, [_pb(1, "batch", "batch_imaging", "0.1.0",
                                       params={"buffer_vis": "bv", "buffer_img": "bi", "buffer_size": huge})]))
    ctl = Controller(db, workdir=str(tmp_path), buffer_root=str(tmp_path / "buffers"))
    _until(ctl, lambda: db.require_pb("pb-t-20261204-00001")["state"] == "FAILED")
    reason = db.require_pb("pb-t-20261204-00001")["reason"]
    assert reason.startswith("cannot create buffer reservations bv, bi for pb-t-20261204-00001: they need 2.0 PiB")
    assert "free space, give a smaller buffer_size" in reason
    assert db.buffers() == [] and not (tmp_path / "buffers" / "bv").exists()
    db.close()


def test_buffer_names_are_exclusive_across_pbs(store_url, tmp_path):
    db = open_store(store_url)
    res = [{"name": "shared", "pb_id": "pb-a", "size": 1, "location": str(tmp_path / "shared")}]
    assert db.reserve("pb-a", res)[0]["pb_id"] == "pb-a"
    assert db.reserve("pb-a", res)[0]["pb_id"] == "pb-a"        # idempotent for its owner (takeover)
    with pytest.raises(ValidationError, match="buffer 'shared' is already reserved by processing block pb-a"):
        db.reserve("pb-b", [{**res[0], "pb_id": "pb-b"}])
    db.close()


def test_batch_pbs_wait_for_resources_and_dependencies_then_all_finish(store_url, tmp_path):
    """Six test_batch PBs: 1..4 independent, 5 after 1 and 2, 6 after 5. With two slots no more
    than two workflow processes ever run, 5 starts after 1 and 2 finished, 6 after 5."""
    db = open_store(store_url)
    pbs = [_pb(n, "batch", "test_batch", params={"duration": 0.3}) for n in range(1, 5)]
    pbs += [_pb(5, "batch", "test_batch", deps=[1, 2]), _pb(6, "batch", "test_batch", deps=[5])]
    ops.submit(db, _sbi(tmp_path, pbs))
    ctl = Controller(db, workdir=str(tmp_path), max_running=2, poll=0.05)
    most = 0

    def done() -> bool:
        nonlocal most
        most = max(most, len(ctl.children))
        return all(p["state"] in TERMINAL for p in db.pbs())

    _until(ctl, done, timeout=90)
    got = {p["id"][-1]: p for p in db.pbs()}
    assert {p["state"] for p in got.values()} == {"FINISHED"}
    assert most == 2
    assert entered(got["5"], "RUNNING") >= max(entered(got["1"], "FINISHED"), entered(got["2"], "FINISHED"))
    assert entered(got["6"], "RUNNING") >= entered(got["5"], "FINISHED")
    assert all("Waiting for resources to be available" in [ln["message"] for ln in db.logs(p["id"])]
               for p in got.values())
    db.close()


def test_controller_survives_an_etcd_outage(tmp_path):
    """etcd stops under a running controller: store calls raise StoreError (one paragraph), the
    controller keeps retrying, and once etcd is back it carries on with the queued PB."""
    from sdp_etcd import start_etcd, stop_etcd

    from radioflow.ops.sdp.kv import StoreError

    data = tmp_path / "etcd"
    data.mkdir()
    proc, url = start_etcd(data)
    port = int(url.rsplit(":", 1)[1])
    store = f"etcd://127.0.0.1:{port}/outage"
    db = open_store(store)
    ctl = Controller(open_store(store), workdir=str(tmp_path), poll=0.1)
    stop = threading.Event()
    loop = threading.Thread(target=ctl.run, kwargs={"until": stop.is_set})
    try:
        loop.start()
        stop_etcd(proc)
        with pytest.raises(StoreError, match=f"etcd SDP store {store}: ConnectionFailedError"):
            db.pbs()
        time.sleep(1.5)
        assert loop.is_alive()
        proc, _ = start_etcd(data, client=port)
        ops.submit(db, _sbi(tmp_path, [_pb(1, "batch", "test_batch", params={"duration": 0})]))
        deadline = time.time() + 30
        while db.require_pb("pb-t-20261204-00001")["state"] != "FINISHED":
            assert time.time() < deadline
            time.sleep(0.1)
    finally:
        stop.set()
        loop.join(30)
        stop_etcd(proc)
    assert not loop.is_alive()
