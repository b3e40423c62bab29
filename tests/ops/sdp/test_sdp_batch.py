"""End to end through the CLI: real batch_imaging runs (Dask, casacore, FITS) driven by SDP PBs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits

from radioflow.ops.sdp import example_path
from radioflow.ops.sdp import operations as ops
from radioflow.ops.sdp.configdb import open_store
from radioflow.processes import pid_alive
from radioflow.run.records import RunRecords

pytestmark = pytest.mark.slow
SRC = str(Path(__file__).resolve().parents[3] / "src")


def _cli(*args: str, cwd: Path, **kw: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "300"}
    return subprocess.Popen([sys.executable, "-m", "radioflow", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    p = _cli(*args, cwd=cwd)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _poll(fn, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_batch_waits_for_release_then_finishes_with_images(tmp_path, store_url, monkeypatch):
    """The SDP demo: a real-time PB and a batch_imaging PB depending on it. ``submit --wait`` runs
    the controller; the batch PB stays WAITING until ``release``, then RUNNING -> FINISHED with
    FITS images in its image buffer; ``status --json`` shows every state with timestamps. On
    SQLite and on a real etcd (``RADIOFLOW_SDP_STORE``, read by every command)."""
    monkeypatch.setenv("RADIOFLOW_SDP_STORE", store_url)
    sbi = example_path("sbi-prototype.json")
    doc = json.loads(sbi.read_text())
    rt_id, batch_id = (p["id"] for p in doc["processing_blocks"])
    waiter = _cli("sdp", "submit", str(sbi), "--wait", cwd=tmp_path)
    try:
        db = open_store(workdir=tmp_path)
        _poll(lambda: db.sbi(doc["id"]) and db.require_pb(rt_id)["state"] == "RUNNING"
              and db.require_pb(batch_id)["state"] == "WAITING", 60, "RUNNING + WAITING")
        time.sleep(2.0)
        assert db.require_pb(batch_id)["state"] == "WAITING"
        assert _run("sdp", "release", doc["id"], cwd=tmp_path).returncode == 0
        out, err = waiter.communicate(timeout=240)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert f"{batch_id}  FINISHED" in out
    status = json.loads(_run("sdp", "status", doc["id"], "--json", cwd=tmp_path).stdout)
    pbs = {p["id"]: p for p in status["sbis"][0]["processing_blocks"]}
    assert [h["state"] for h in pbs[rt_id]["history"]] == ["STARTING", "RUNNING", "FINISHED"]
    hist = pbs[batch_id]["history"]
    assert [h["state"] for h in hist] == ["STARTING", "WAITING", "RUNNING", "FINISHED"]
    assert all(a["at"] <= b["at"] for a, b in zip(hist, hist[1:]))
    released = status["sbis"][0]["released"]
    assert hist[2]["at"] >= released >= hist[1]["at"]          # RUNNING only after the release
    img = tmp_path / "radioflow-data" / "buffers" / doc["processing_blocks"][1]["parameters"]["buffer_img"]
    restored = fits.getdata(img / "band-restored.fits")
    assert restored.shape[-2:] == (64, 64) and float(abs(restored).max()) > 0
    assert (img / "window-1-restored.fits").is_file()
    # the PB is a radioflow run: its id is on the PB and in the run records
    run_id = pbs[batch_id]["run_ids"][0]
    rec = RunRecords(tmp_path / ".radioflow" / "runs.db")
    assert rec.run(run_id)["status"] == "ok"
    rec.close()
    logs = _run("sdp", "pb", "logs", batch_id, cwd=tmp_path).stdout
    for line in ("Claimed processing block", "Waiting for resources to be available", "Creating buffer reservations",
                 "Deploying Dask EE", "Running simulation pipeline", "Running ICAL pipeline", "Removing Dask EE",
                 "Setting status to FINISHED"):
        assert line in logs
    listing = _run("sdp", "buffers", "--json", cwd=tmp_path).stdout
    used = {b["name"]: b for b in json.loads(listing)}
    assert used[img.name]["used"] > 0 and used[img.name]["size"] > 0


def test_cancel_running_batch_pb_kills_its_processes_and_keeps_buffers(tmp_path):
    sbi = example_path("sbi-assign-resources.json")
    pb_id = json.loads(sbi.read_text())["processing_blocks"][0]["pb_id"]
    waiter = _cli("sdp", "submit", str(sbi), "--wait", cwd=tmp_path)
    try:
        db = open_store(workdir=tmp_path)
        _poll(lambda: db.pb(pb_id) and any(ln["message"] == "Running simulation pipeline"
                                           for ln in db.logs(pb_id)), 90, "the simulation to start")
        pid = db.require_pb(pb_id)["pid"]
        t0 = time.time()
        res = _run("sdp", "pb", "cancel", pb_id, cwd=tmp_path)
        took = time.time() - t0
        waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert res.returncode == 0 and f"{pb_id} CANCELLED" in res.stdout, res.stderr
    assert took < 5.0
    assert waiter.returncode == 1
    assert not pid_alive(pid)
    out = subprocess.run(["ps", "-eo", "pid,pgid"], capture_output=True, text=True).stdout
    assert not [ln for ln in out.splitlines()[1:] if ln.split()[1] == str(pid)]   # the whole group is gone
    pb = db.require_pb(pb_id)
    assert pb["state"] == "CANCELLED" and pb["reason"] == "cancelled by the operator"
    for name in pb["buffers"]:
        assert (tmp_path / "radioflow-data" / "buffers" / name).is_dir()
    assert all(not b["active"] for b in db.buffers())


def test_killed_controller_is_replaced_and_the_run_resumes(tmp_path):
    """SIGKILL a controller mid-PB: its workflow process group dies with it; a second controller
    claims the PB after the lease expires and resumes the run to FINISHED. No step of the second
    run starts before the first run's process is gone (checked in the run records)."""
    sbi = example_path("sbi-assign-resources.json")
    pb_id = json.loads(sbi.read_text())["processing_blocks"][0]["pb_id"]
    db = open_store(workdir=tmp_path)
    ops.submit(db, sbi)
    first = _cli("sdp", "controller", "--lease-ttl", "3", cwd=tmp_path)
    try:
        _poll(lambda: any(ln["message"] == "Running ICAL pipeline" for ln in db.logs(pb_id)), 120, "ICAL")
        pid = db.require_pb(pb_id)["pid"]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.time()
        lease_until = db.require_pb(pb_id)["lease_until"]
        _poll(lambda: not pid_alive(pid), 5, "the orphaned workflow process to end")
        gone_at = time.time()
    finally:
        if first.poll() is None:
            first.kill()
    assert gone_at - killed_at < 3.0
    second = _cli("sdp", "controller", "--lease-ttl", "3", cwd=tmp_path)
    try:
        _poll(lambda: db.require_pb(pb_id)["state"] in ("FINISHED", "FAILED"), 240, "the PB to end")
        time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert "controller stopped" in out
    pb = db.require_pb(pb_id)
    claims = [ln for ln in db.logs(pb_id) if ln["message"].startswith("Claimed processing block")]
    assert len(claims) == 2 and claims[1]["at"] >= lease_until > killed_at   # only after the lease ran out
    assert pb["state"] == "FINISHED" and len(pb["run_ids"]) == 2
    assert [h["state"] for h in pb["history"]] == ["STARTING", "WAITING", "RUNNING", "FINISHED"]
    rec = RunRecords(tmp_path / ".radioflow" / "runs.db")
    run1, run2 = (rec.steps(r) for r in pb["run_ids"])
    rec.close()
    assert any(s["status"] == "ok" for s in run1)
    assert min(s["started"] for s in run2) >= gone_at - 0.5
    resumed = [s for s in run2 if s.get("resumed_from") == pb["run_ids"][0]]
    assert {s["fqname"] for s in resumed} >= {"batch-imaging.sky", "batch-imaging.windows"}
    img = Path(db.buffers()[0]["location"]).parent / json.loads(sbi.read_text())["processing_blocks"][0][
        "parameters"]["buffer_img"]
    assert (img / "band-restored.fits").is_file()
