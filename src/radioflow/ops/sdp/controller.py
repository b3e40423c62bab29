"""The processing controller: claims processing blocks and drives them through their states.

Each tick the controller looks at every live PB. A PB is worked on by one controller at a
time: the owner writes its id and a lease expiry on the PB (compare-and-swap) and renews it
each tick; another controller may claim the PB only after the lease has expired. Then:

* STARTING: an unknown workflow fails the PB with the reason; a real-time PB starts at once
  (RUNNING); a batch PB goes to WAITING.
* WAITING: a dependency that FAILED or was CANCELLED fails the PB; when every dependency is
  FINISHED and fewer than ``max_running`` workflow processes run here (the resources), the
  buffer reservations are created and the workflow process starts (RUNNING).
* RUNNING: the workflow process's exit sets FINISHED or FAILED; a RUNNING PB whose owner died
  is resumed by the new owner (its radioflow run resumes completed steps).
* A cancel request ends the PB's process group (within a second or two) and sets CANCELLED;
  buffers are kept.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...errors import RadioflowError
from . import buffers as bufmod
from .configdb import ConfigDB
from .kv import StoreError
from .states import CANCELLED, FAILED, FINISHED, RUNNING, STARTING, TERMINAL, WAITING, transition
from .workflows import UnknownWorkflow, Workflow, buffer_requests, lookup

log = logging.getLogger("radioflow.sdp")


@dataclass
class _Child:
    proc: subprocess.Popen
    log_path: Path


@dataclass
class Controller:
    """One processing controller. ``tick()`` does one pass; ``run()`` loops."""

    db: ConfigDB
    workdir: str = "."
    buffer_root: str | None = None
    lease_ttl: float = 10.0
    max_running: int = 4           # workflow processes at once before batch PBs wait ("resources")
    poll: float = 0.25
    only: set[str] = field(default_factory=set)   # work on these PBs only (a per-PB Kubernetes Job)
    kinds: set[str] = field(default_factory=set)  # work on PBs of these kinds only (empty: all)
    ident: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    children: dict[str, _Child] = field(default_factory=dict)
    _changes: int = 0

    def __post_init__(self) -> None:
        self.workdir = str(Path(self.workdir).absolute())
        self.buffer_root = bufmod.normalise_root(self.buffer_root) if self.buffer_root else \
            str(bufmod.default_root(self.workdir))

    def mine(self, pb: dict[str, Any]) -> bool:
        """Whether this controller works on ``pb`` (``only`` and ``kinds``)."""
        return (not self.only or pb["id"] in self.only) and (not self.kinds or pb["kind"] in self.kinds)

    def ended(self) -> bool:
        """With ``only``: every one of those PBs exists and has ended."""
        states = {p["id"]: p["state"] for p in self.db.pbs() if p["id"] in self.only}
        return bool(self.only) and len(states) == len(self.only) and all(s in TERMINAL for s in states.values())

    # -- ownership ---------------------------------------------------------------------
    def _claim(self, pb: dict[str, Any]) -> dict[str, Any] | None:
        """Own the PB (or renew the lease when half of it is used); None when another live
        controller owns it."""
        if pb.get("owner") == self.ident and pb.get("lease_until", 0.0) - time.time() > self.lease_ttl / 2:
            return pb

        def fn(p: dict[str, Any]) -> dict[str, Any] | None:
            if p["state"] in TERMINAL:
                return None
            now = time.time()
            if p.get("owner") not in (None, self.ident) and p.get("lease_until", 0.0) > now:
                return None
            p["claimed_now"] = p.get("owner") != self.ident
            p["owner"], p["lease_until"] = self.ident, now + self.lease_ttl
            return p

        got = self.db.update_pb(pb["id"], fn)
        if got is not None and got.pop("claimed_now", False):
            self.db.log(pb["id"], f"Claimed processing block {pb['id']}", source=pb["workflow"])
        return got

    def _set(self, pb_id: str, state: str, reason: str = "", **extra: Any) -> dict[str, Any] | None:
        def fn(p: dict[str, Any]) -> dict[str, Any] | None:
            if p.get("owner") != self.ident or p["state"] == state:
                return None
            transition(p, state, reason)
            p.update(extra)
            if state in TERMINAL:
                p["owner"], p["lease_until"] = None, 0.0
            return p

        new = self.db.update_pb(pb_id, fn)
        if new is not None:
            self._changes += 1
            self.db.log(pb_id, f"Setting status to {state}" + (f": {reason}" if reason else ""),
                        source=new["workflow"], level="ERROR" if state == FAILED else "INFO")
            if state in TERMINAL:
                self.db.end_reservations(pb_id)
        return new

    # -- one pass ----------------------------------------------------------------------
    def tick(self) -> int:
        """Advance every live PB one step; return how many PBs are still live."""
        live = 0
        pbs = self.db.pbs()
        by_id = {p["id"]: p for p in pbs}
        for pb in pbs:
            if pb["state"] in TERMINAL or not self.mine(pb):
                continue
            live += 1
            owned = self._claim(pb)
            if owned is None:
                continue
            try:
                self._advance(owned, by_id)
            except StoreError:
                raise
            except RadioflowError as exc:
                self._stop_child(owned["id"])
                self._set(owned["id"], FAILED, str(exc))
        for pb_id in [k for k, v in self.children.items() if by_id.get(k, {}).get("state") in TERMINAL]:
            self._stop_child(pb_id)
        return live

    def _advance(self, pb: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> None:
        pb_id, state = pb["id"], pb["state"]
        if pb.get("cancel_requested"):
            self._stop_child(pb_id)
            self._set(pb_id, CANCELLED, "cancelled by the operator")
            return
        try:
            wf = lookup(pb["kind"], pb["workflow"], pb["version"])
        except UnknownWorkflow as exc:
            self._set(pb_id, FAILED, str(exc))
            return
        if state == STARTING:
            if wf.kind == "realtime":
                started = self._start(pb, wf, resume=False)
                self._set(pb_id, RUNNING, "real-time processing block starts at once", **started)
            else:
                self._set(pb_id, WAITING, "waiting for dependencies and resources")
                self.db.log(pb_id, "Waiting for resources to be available", source=wf.name)
        elif state == WAITING:
            self._wait(pb, wf, by_id)
        elif state == RUNNING:
            self._watch(pb, wf)

    def _wait(self, pb: dict[str, Any], wf: Workflow, by_id: dict[str, dict[str, Any]]) -> None:
        pending = False
        for dep in pb["dependencies"]:
            other = by_id.get(dep["pb_id"]) or self.db.pb(dep["pb_id"])
            dstate = other["state"] if other else "MISSING"
            if dstate in (FAILED, CANCELLED, "MISSING"):
                why = f": {other.get('reason')}" if other and other.get("reason") else ""
                self._set(pb["id"], FAILED, f"dependency {dep['pb_id']} is {dstate}{why}")
                return
            pending = pending or dstate != FINISHED
        if pending:
            return
        if len(self.children) >= self.max_running:
            return
        self.db.log(pb["id"], "Resources are available", source=wf.name)
        self.db.log(pb["id"], "Creating buffer reservations", source=wf.name)
        requests = buffer_requests(wf, pb)
        records = bufmod.plan(pb["id"], requests, str(self.buffer_root), self.db.buffers(),
                              stage=bufmod.stage_dir(self.workdir, pb["id"]))
        held = self.db.reserve(pb["id"], records)
        bufmod.materialise(held)
        for r in held:
            self.db.log(pb["id"], f"buffer {r['name']}: {bufmod.human(r['size'])} at {r['location']}", source=wf.name)
        started = self._start(pb, wf, resume=False)
        self._set(pb["id"], RUNNING, "dependencies finished; resources reserved",
                  buffers=[r["name"] for r in held], buffer_root=self.buffer_root, **started)

    def _watch(self, pb: dict[str, Any], wf: Workflow) -> None:
        child = self.children.get(pb["id"])
        if child is None:   # taken over from a controller that died: resume its run
            self.db.log(pb["id"], "Resuming processing block after the previous controller's lease expired",
                        source=wf.name)
            started = self._start(pb, wf, resume=True)
            self.db.update_pb(pb["id"], lambda p: {**p, **started})
            return
        code = child.proc.poll()
        if code is None:
            return
        del self.children[pb["id"]]
        if code == 0:
            self._set(pb["id"], FINISHED)
            return
        fresh = self.db.pb(pb["id"]) or pb
        reason = fresh.get("error") or _last_line(child.log_path) or f"workflow process exited with code {code}"
        self._set(pb["id"], FAILED, reason)

    # -- processes -----------------------------------------------------------------------
    def _start(self, pb: dict[str, Any], wf: Workflow, *, resume: bool) -> dict[str, Any]:
        """Start the PB's workflow process in its own process group; return its pid and host."""
        log_dir = Path(self.workdir, ".radioflow", "sdp")
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{pb['id']}.log"
        cmd = [sys.executable, "-m", "radioflow.ops.sdp.execute", pb["id"], "--store", self.db.url,
               "--workdir", self.workdir, "--buffer-root", str(pb.get("buffer_root") or self.buffer_root)]
        if resume:
            cmd.append("--resume")
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.workdir, env=env, start_new_session=True)
        self.children[pb["id"]] = _Child(proc, log_path)
        return {"pid": proc.pid, "host": socket.gethostname()}

    def _stop_child(self, pb_id: str, grace: float = 2.0) -> None:
        """End the PB's process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        child = self.children.pop(pb_id, None)
        if child is None:
            return
        pgid = child.proc.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                child.proc.wait(wait)
                _reap_group(pgid, wait)
                if not _group_alive(pgid):
                    break
            except subprocess.TimeoutExpired:
                continue

    def shutdown(self) -> None:
        """Stop every workflow process this controller started and give up its leases at once,
        so another controller resumes those PBs without waiting for the leases to expire."""
        for pb_id in list(self.children):
            self._stop_child(pb_id)

        def release(p: dict[str, Any]) -> dict[str, Any] | None:
            if p.get("owner") != self.ident or p["state"] in TERMINAL:
                return None
            return {**p, "owner": None, "lease_until": 0.0}

        for pb in self.db.pbs():
            if pb.get("owner") == self.ident:
                self.db.update_pb(pb["id"], release)

    def idle(self) -> bool:
        """True when this controller runs no workflow process and no PB can advance now."""
        return not self.children and self._changes == 0

    def run(self, *, once: bool = False, until: Callable[[], bool] | None = None) -> None:
        """Tick until ``until()`` is true; ``once``: until the queued work is done (idle)."""
        try:
            while True:
                self._changes = 0
                try:
                    self.tick()
                except StoreError as exc:   # the database is briefly unreachable: try again
                    log.warning("%s; retrying", exc)
                    time.sleep(max(self.poll, 1.0))
                    continue
                if (until is not None and until()) or (once and self.idle()):
                    return
                if self._changes == 0:   # after progress, look again at once
                    time.sleep(self.poll)
        finally:
            self.shutdown()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reap_group(pgid: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while _group_alive(pgid) and time.time() < deadline:
        time.sleep(0.05)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""
