"""CLI: ``radioflow sdp`` - the SDP operator's commands (submit, release, status, pb, buffers,
workflows, controller). Heavy modules are imported inside the commands."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, List, Optional

import typer

STORE_HELP = "Configuration database: etcd://HOST:PORT[/NS], sqlite:///PATH or a file (default: env " \
             "RADIOFLOW_SDP_STORE, else WORKDIR/.radioflow/runs.db)."
_store = typer.Option(None, "--store", help=STORE_HELP, show_default=False)
_workdir = typer.Option(Path("."), "-C", "--workdir", help="Directory runs and PB logs go to (.radioflow/).")

_buffer_root = typer.Option(None, "--buffer-root", show_default=False, help=(
    "Where buffer reservations live: a directory or s3://BUCKET/PREFIX (default: config sdp.buffer_root, "
    "env RADIOFLOW_SDP__BUFFER_ROOT, else WORKDIR/radioflow-data/buffers). S3 credentials come from the "
    "AWS environment or storage.s3 settings."))

sdp = typer.Typer(help="SDP control plane: scheduling-block instances, processing blocks, buffers.",
                  no_args_is_help=True)
pb_app = typer.Typer(help="Processing blocks: list, show, logs, cancel.", no_args_is_help=True)


def _db(store: Optional[str], workdir: Path) -> Any:
    from ..ops.sdp.configdb import open_store

    return open_store(store, workdir=workdir)


def _root(given: Optional[str]) -> Optional[str]:
    """The buffer root: the option, else the configuration's ``sdp.buffer_root`` (None: default)."""
    if given:
        return given
    from ..config import load_config

    root = (load_config().get("sdp") or {}).get("buffer_root")
    return str(root) if root else None


def _when(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if ts else "-"


@sdp.command("submit")
def submit(
    sbi_file: Path = typer.Argument(..., help="SBI JSON (SDP prototype or AssignResources shape)."),
    wait: bool = typer.Option(False, "--wait", help="Run a controller here until every PB of the SBI has ended."),
    store: Optional[str] = _store,
    workdir: Path = _workdir,
    buffer_root: Optional[str] = _buffer_root,
) -> None:
    """AssignResources: validate an SBI and queue its processing blocks (STARTING)."""
    from ..ops.sdp import operations as ops

    db = _db(store, workdir)
    try:
        sbi = ops.submit(db, sbi_file)
        typer.echo(f"submitted {sbi['id']}: {', '.join(sbi['pb_ids'])} ({db.url})")
        if not wait:
            return
        from ..ops.sdp.controller import Controller
        from ..ops.sdp.states import FINISHED, TERMINAL

        seen: dict[str, str] = {}

        def done() -> bool:
            pbs = db.pbs(sbi["id"])
            for pb in pbs:
                if seen.get(pb["id"]) != pb["state"]:
                    seen[pb["id"]] = pb["state"]
                    why = f" ({pb['reason']})" if pb.get("reason") else ""
                    typer.echo(f"{_when(time.time())}  {pb['id']}  {pb['state']}{why}")
            return all(pb["state"] in TERMINAL for pb in pbs)

        Controller(db, workdir=str(workdir), buffer_root=_root(buffer_root)).run(until=done)
        if any(pb["state"] != FINISHED for pb in db.pbs(sbi["id"])):
            raise typer.Exit(1)
    finally:
        db.close()


@sdp.command("release")
def release(sbi_id: str = typer.Argument(...), store: Optional[str] = _store, workdir: Path = _workdir) -> None:
    """ReleaseResources: end the SBI's real-time processing blocks (batch PBs then may start)."""
    from ..ops.sdp import operations as ops

    db = _db(store, workdir)
    try:
        sbi = ops.release(db, sbi_id)
        typer.echo(f"{sbi['id']} released at {_when(sbi['released'])}")
    finally:
        db.close()


@sdp.command("status")
def status(sbi_id: Optional[str] = typer.Argument(None), as_json: bool = typer.Option(False, "--json"),
           store: Optional[str] = _store, workdir: Path = _workdir) -> None:
    """SBIs and their processing blocks with states (``--json``: every state change timestamped)."""
    from ..ops.sdp import operations as ops

    db = _db(store, workdir)
    try:
        report = ops.status(db, sbi_id)
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps({"sbis": report}, indent=2))
        return
    if not report:
        typer.echo("no scheduling-block instances")
    for s in report:
        typer.echo(f"{s['id']}  {s['status']}  created {_when(s['created'])}")
        for pb in s["processing_blocks"]:
            since = pb["history"][-1]["at"] if pb["history"] else None
            why = f"  ({pb['reason']})" if pb.get("reason") else ""
            typer.echo(f"  {pb['id']:<28} {pb['kind']:<8} {pb['workflow'] + ' ' + pb['version']:<22} "
                       f"{pb['state']:<9} since {_when(since)}{why}")


@pb_app.command("list")
def pb_list(sbi_id: Optional[str] = typer.Option(None, "--sbi", help="Only this SBI's PBs."),
            store: Optional[str] = _store, workdir: Path = _workdir) -> None:
    """Processing blocks with their state."""
    db = _db(store, workdir)
    try:
        for pb in db.pbs(sbi_id):
            run = pb["run_ids"][-1] if pb.get("run_ids") else "-"
            typer.echo(f"{pb['id']:<28} {pb['sbi_id']:<28} {pb['workflow']:<14} {pb['state']:<9} run {run}")
    finally:
        db.close()


@pb_app.command("show")
def pb_show(pb_id: str, as_json: bool = typer.Option(False, "--json"),
            store: Optional[str] = _store, workdir: Path = _workdir) -> None:
    """One processing block: workflow, parameters, dependencies, states, runs, buffers."""
    db = _db(store, workdir)
    try:
        pb = db.require_pb(pb_id)
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps(pb, indent=2))
        return
    typer.echo(f"{pb['id']} of {pb['sbi_id']}: {pb['kind']}/{pb['workflow']}/{pb['version']}  {pb['state']}")
    if pb.get("reason"):
        typer.echo(f"  reason: {pb['reason']}")
    deps = ", ".join(f"{d['pb_id']} ({','.join(d['kind'])})" for d in pb["dependencies"]) or "none"
    typer.echo(f"  dependencies: {deps}")
    typer.echo(f"  parameters: {json.dumps(pb['parameters'])}")
    typer.echo(f"  runs: {', '.join(pb.get('run_ids') or []) or '-'}  buffers: {', '.join(pb.get('buffers') or []) or '-'}")
    for h in pb["history"]:
        typer.echo(f"  {_when(h['at'])}  {h['state']:<9} {h.get('reason', '')}")


@pb_app.command("logs")
def pb_logs(pb_id: str, store: Optional[str] = _store, workdir: Path = _workdir) -> None:
    """A processing block's log, as the SDP workflow prints it."""
    db = _db(store, workdir)
    try:
        db.require_pb(pb_id)
        for line in db.logs(pb_id):
            typer.echo(f"{_when(line['at'])} {line['level']}:{line['source']}:{line['message']}")
    finally:
        db.close()


@pb_app.command("cancel")
def pb_cancel(pb_id: str, wait: float = typer.Option(10.0, "--wait", help="Seconds to wait for CANCELLED."),
              store: Optional[str] = _store, workdir: Path = _workdir) -> None:
    """Cancel a processing block: its controller ends its processes; buffers are kept."""
    from ..ops.sdp import operations as ops

    db = _db(store, workdir)
    try:
        pb = ops.cancel(db, pb_id, wait=wait)
    finally:
        db.close()
    if pb["state"] == "CANCELLED":
        typer.echo(f"{pb_id} CANCELLED")
    else:
        typer.echo(f"{pb_id} is {pb['state']}: cancel requested; its controller has not acted yet")
        raise typer.Exit(1)


@sdp.command("buffers")
def buffers(as_json: bool = typer.Option(False, "--json"), store: Optional[str] = _store,
            workdir: Path = _workdir) -> None:
    """Buffer reservations: owner PB, reserved and used bytes, location."""
    from ..ops.sdp import buffers as bufmod
    from ..ops.sdp import operations as ops

    db = _db(store, workdir)
    try:
        rows = ops.buffer_usage(db)
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no buffer reservations")
    for b in rows:
        state = "active" if b.get("active", True) else "ended"
        typer.echo(f"{b['name']:<40} {b['pb_id']:<28} reserved {bufmod.human(b['size']):>10}  "
                   f"used {bufmod.human(b['used']):>10}  {state:<6} {b['location']}")


@sdp.command("workflows")
def workflows() -> None:
    """Registered workflows (kind/name/version) and what they run."""
    from ..ops.sdp.workflows import REGISTRY

    for wf in REGISTRY.values():
        what = {"recipe": f"recipe {wf.recipe} (buffers: {', '.join(wf.buffers)})",
                "until_released": "runs until the SBI is released",
                "sleep": "waits `duration` seconds (scheduling tests)"}[wf.action]
        typer.echo(f"{wf.kind:<9} {wf.name:<15} {wf.version:<7} {what}")


@sdp.command("controller")
def controller(
    once: bool = typer.Option(False, "--once", help="Work until nothing queued can advance, then exit."),
    lease_ttl: float = typer.Option(10.0, "--lease-ttl", help="Seconds a PB stays owned without renewal."),
    max_running: int = typer.Option(4, "--max-running", min=1, help="Workflow processes at once before batch PBs wait for resources."),
    store: Optional[str] = _store,
    workdir: Path = _workdir,
    buffer_root: Optional[str] = _buffer_root,
    only: Optional[List[str]] = typer.Option(None, "--pb", help="Work on this PB only (repeatable); exit when "
                                             "they have all ended, code 0 if all FINISHED (a per-PB Job)."),
    kinds: Optional[List[str]] = typer.Option(None, "--kind", help="Work on PBs of this kind only (realtime or "
                                              "batch; repeatable), e.g. when batch PBs run as their own Jobs."),
) -> None:
    """The processing controller: claims PBs, waits for dependencies, reserves buffers, runs workflows."""
    import signal

    from ..errors import UsageError
    from ..ops.sdp.controller import Controller

    bad = [k for k in kinds or () if k not in ("realtime", "batch")]
    if bad:
        raise UsageError(f"--kind {bad[0]!r}: a processing block's kind is realtime or batch.")
    db = _db(store, workdir)
    ctl = Controller(db, workdir=str(workdir), buffer_root=_root(buffer_root), lease_ttl=lease_ttl,
                     max_running=max_running, only=set(only or ()), kinds=set(kinds or ()))

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"controller {ctl.ident} on {db.url}")
    try:
        ctl.run(once=once, until=ctl.ended if only else None)
        ended = {p["id"]: p["state"] for p in db.pbs() if p["id"] in ctl.only}
    except KeyboardInterrupt:
        typer.echo("controller stopped; its PBs are free for another controller")
        return
    finally:
        db.close()
    if ended:
        typer.echo(", ".join(f"{k} {v}" for k, v in sorted(ended.items())))
        if any(v != "FINISHED" for v in ended.values()):
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``radioflow sdp ...`` to the CLI."""
    sdp.add_typer(pb_app, name="pb")
    app.add_typer(sdp, name="sdp")
