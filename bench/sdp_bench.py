"""Benchmark: the SDP control plane on SQLite and on a real etcd (started here on 127.0.0.1).

For each configuration database a ``radioflow sdp controller`` process runs and this script
(1) submits ``--latency`` SBIs one after the other, each with one real-time PB, and measures
submit -> RUNNING (the RUNNING timestamp on the PB minus the moment ``submit`` returned; target
< 0.5 s with the controller's 0.25 s poll), releasing each; (2) submits one SBI of ``--queued``
``test_batch`` PBs (duration 0) and measures the time until all are FINISHED with 4 resource
slots, checking that every PB went STARTING -> WAITING -> RUNNING -> FINISHED with ordered
timestamps (no state lost).

Prints a markdown table and writes it to ``bench/results/sdp.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

from radioflow.ops.sdp import operations as ops  # noqa: E402
from radioflow.ops.sdp.configdb import ConfigDB, open_store  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_etcd(tmp: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("etcd")
    if exe is None:
        raise SystemExit("etcd not installed (apt-get install etcd-server)")
    client, peer = _port(), _port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    proc = subprocess.Popen([exe, "--name", "bench", "--data-dir", str(tmp / "etcd"), "--listen-client-urls", url,
                             "--advertise-client-urls", url, "--listen-peer-urls", peer_url,
                             "--initial-advertise-peer-urls", peer_url, "--initial-cluster", f"bench={peer_url}",
                             "--log-level", "error", "--logger", "zap"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/version", timeout=1)
            return proc, f"etcd://127.0.0.1:{client}/bench"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("etcd did not start")


def sbi_file(tmp: Path, n: int, pbs: list[dict[str, Any]]) -> Path:
    path = tmp / f"sbi-{n}.json"
    path.write_text(json.dumps({"id": f"sbi-bench-20261204-{n:05d}", "processing_blocks": pbs}))
    return path


def wait_for(db: ConfigDB, cond: Any, timeout: float) -> None:
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.01)


def bench_store(url: str, tmp: Path, latency_n: int, queued: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    ctl = subprocess.Popen([sys.executable, "-m", "radioflow", "sdp", "controller", "--store", url, "-C", str(tmp),
                            "--max-running", "4"], env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    db = open_store(url)
    try:
        lat = []
        for i in range(latency_n):
            pb_id = f"pb-bench-20261204-{i:05d}"
            path = sbi_file(tmp, i, [{"id": pb_id, "workflow": {"type": "realtime", "id": "test_realtime",
                                                                "version": "0.2.0"}, "parameters": {}}])
            sbi = ops.submit(db, path)
            submitted = time.time()
            wait_for(db, lambda pb_id=pb_id: db.require_pb(pb_id)["state"] == "RUNNING", 30)
            pb = db.require_pb(pb_id)
            lat.append(next(h["at"] for h in pb["history"] if h["state"] == "RUNNING") - submitted)
            ops.release(db, sbi["id"])
        pbs = [{"id": f"pb-bench-20261204-{10000 + k:05d}", "parameters": {"duration": 0},
                "workflow": {"type": "batch", "id": "test_batch", "version": "0.2.0"}} for k in range(queued)]
        sbi = ops.submit(db, sbi_file(tmp, 9999, pbs))
        t0 = time.time()
        wait_for(db, lambda: all(p["state"] in ("FINISHED", "FAILED", "CANCELLED") for p in db.pbs(sbi["id"])),
                 900)
        took = time.time() - t0
        done = db.pbs(sbi["id"])
        intact = sum(1 for p in done if [h["state"] for h in p["history"]] == ["STARTING", "WAITING", "RUNNING",
                                                                            "FINISHED"]
                     and all(a["at"] <= b["at"] for a, b in zip(p["history"], p["history"][1:])))
        return {"lat_median": statistics.median(lat), "lat_max": max(lat), "queued": len(done), "intact": intact,
                "took": took}
    finally:
        ctl.send_signal(signal.SIGTERM)
        ctl.wait(60)
        db.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=int, default=10, help="SBIs for the submit -> RUNNING latency")
    ap.add_argument("--queued", type=int, default=100, help="test_batch PBs queued at once")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "sdp.md")
    args = ap.parse_args()
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rf-sdp-bench-") as d:
        tmp = Path(d)
        etcd, etcd_url = start_etcd(tmp)
        try:
            for name, url in (("SQLite", f"sqlite:///{tmp / 'sqlite' / 'runs.db'}"), ("etcd 3.4", etcd_url)):
                work = tmp / name.split()[0].lower()
                work.mkdir(exist_ok=True)
                r = bench_store(url, work, args.latency, args.queued)
                rows.append(f"| {name} | {r['lat_median']:.3f} s | {r['lat_max']:.3f} s | {r['queued']} | "
                            f"{r['intact']} | {r['took']:.1f} s |")
        finally:
            etcd.terminate()
            etcd.wait(30)
    table = "\n".join([
        f"Controller: `radioflow sdp controller` (poll 0.25 s, 4 resource slots); {os.cpu_count()} cores, "
        f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after.",
        "",
        "| database | submit -> RUNNING (median) | (max) | PBs queued | PBs with all 4 states in order | "
        "all queued FINISHED after |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows, ""])
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
