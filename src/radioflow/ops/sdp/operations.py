"""What the ``radioflow sdp`` commands do, as plain functions (the CLI formats their results).

Submit (AssignResources), release (ReleaseResources), cancel, status and buffer listings over a
:class:`ConfigDB`; usable from Python and by the tests without the CLI.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ...errors import UsageError
from . import buffers as bufmod
from .configdb import ConfigDB
from .schema import load_sbi_file
from .states import CANCELLED, TERMINAL, transition


def submit(db: ConfigDB, path: str | Path) -> dict[str, Any]:
    """Validate an SBI file and store the SBI with its PBs (all STARTING); return the SBI."""
    sbi, pbs = load_sbi_file(path)
    db.submit(sbi, pbs)
    for pb in pbs:
        db.log(pb["id"], f"Processing block created by AssignResources of {sbi['id']} "
                         f"(workflow {pb['kind']}/{pb['workflow']}/{pb['version']})", source="sdp")
    return sbi


def release(db: ConfigDB, sbi_id: str) -> dict[str, Any]:
    """ReleaseResources: mark the SBI released, which ends its real-time PBs."""
    db.require_sbi(sbi_id)

    def fn(s: dict[str, Any]) -> dict[str, Any] | None:
        if s.get("status") == "RELEASED":
            return None
        return {**s, "status": "RELEASED", "released": time.time()}

    db.update_sbi(sbi_id, fn)
    for pb in db.pbs(sbi_id):
        if pb["kind"] == "realtime" and pb["state"] not in TERMINAL:
            db.log(pb["id"], f"ReleaseResources of {sbi_id}", source="sdp")
    return db.require_sbi(sbi_id)


def cancel(db: ConfigDB, pb_id: str, *, wait: float = 10.0) -> dict[str, Any]:
    """Cancel a PB. Without a live owner it is CANCELLED here; otherwise its controller is asked
    to end its processes and the call waits up to ``wait`` seconds for CANCELLED."""
    pb = db.require_pb(pb_id)
    if pb["state"] in TERMINAL:
        raise UsageError(f"Processing block {pb_id} already ended ({pb['state']}); nothing to cancel.")

    def fn(p: dict[str, Any]) -> dict[str, Any] | None:
        if p["state"] in TERMINAL:
            return None
        if p.get("owner") is None or p.get("lease_until", 0.0) < time.time():
            transition(p, CANCELLED, "cancelled by the operator (no controller owned it)")
            p["owner"], p["lease_until"] = None, 0.0
            return p
        return {**p, "cancel_requested": True}

    db.update_pb(pb_id, fn)
    db.log(pb_id, "Cancel requested by the operator", source="sdp")
    deadline = time.time() + wait
    while True:
        pb = db.require_pb(pb_id)
        if pb["state"] in TERMINAL or time.time() >= deadline:
            if pb["state"] == CANCELLED:
                db.end_reservations(pb_id)
            return pb
        time.sleep(0.1)


def status(db: ConfigDB, sbi_id: str | None = None) -> list[dict[str, Any]]:
    """SBIs (one or all) with their PBs, every state change timestamped (for ``--json``)."""
    sbis = [db.require_sbi(sbi_id)] if sbi_id else db.sbis()
    out = []
    for s in sorted(sbis, key=lambda s: s["created"]):
        pbs = []
        for pb in db.pbs(s["id"]):
            pbs.append({k: pb.get(k) for k in ("id", "kind", "workflow", "version", "state", "reason", "history",
                                               "dependencies", "run_ids", "buffers", "owner", "parameters")})
        out.append({"id": s["id"], "shape": s["shape"], "status": s["status"], "created": s["created"],
                    "released": s.get("released"), "processing_blocks": pbs})
    return out


def buffer_usage(db: ConfigDB) -> list[dict[str, Any]]:
    """Every reservation with the bytes its location holds now."""
    return [{**b, "used": bufmod.used_bytes(b["location"])} for b in db.buffers()]
