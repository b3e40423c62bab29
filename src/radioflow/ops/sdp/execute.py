"""The process that executes one processing block's workflow (started by a controller).

``python -m radioflow.ops.sdp.execute --store URL --workdir DIR --buffer-root DIR PB_ID``

It runs in its own process group so the controller can end it and every Dask process it
started at once (cancel). A watchdog ends the group when the controller that started it dies,
so a controller taking over after the lease expires never runs a step twice at the same time.
Batch workflows run through radioflow's public run API (each PB is a radioflow run: its run id
is stored on the PB, records in ``<workdir>/.radioflow/runs.db``); a controller taking over
resumes the run (completed steps are not repeated). Real-time test workflows run until the SBI
is released.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ...errors import RadioflowError
from ...resources import human
from ...run.progress import Progress
from ...vis.location import Location, is_remote
from .buffers import stage_dir
from .configdb import ConfigDB, open_store
from .workflows import Workflow, lookup, recipe_args

EXIT_OK, EXIT_FAILED = 0, 1


class PBProgress(Progress):
    """Runner events -> PB log lines, with SDP's pipeline-phase messages."""

    PHASES = {"sky": "Running simulation pipeline", "ical": "Running ICAL pipeline",
              "final": "Running final imaging", "combine-restored": "Combining the band images"}

    def __init__(self, db: ConfigDB, pb_id: str, logger: str) -> None:
        super().__init__(quiet=True)
        self.db, self.pb_id, self.logger = db, pb_id, logger

    def step_started(self, fqname: str, info: str = "") -> None:
        super().step_started(fqname, info)
        parts = fqname.split(".")
        if len(parts) == 2 and parts[1] in self.PHASES:
            self.db.log(self.pb_id, self.PHASES[parts[1]], source=self.logger)

    def step_finished(self, fqname: str, status: str, seconds: float = 0.0, note: str = "") -> None:
        super().step_finished(fqname, status, seconds, note)
        extra = f" ({note})" if note else ""
        self.db.log(self.pb_id, f"step {fqname} {status} in {seconds:.2f} s{extra}", source=self.logger,
                    level="INFO" if status in ("ok", "skipped", "resumed") else "WARNING")


def _watch_parent(parent: int) -> None:
    """End this process group when the controller that started it is gone."""
    while True:
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(0.2)


def run_realtime(db: ConfigDB, pb: dict[str, Any], wf: Workflow) -> int:
    """SDP's test real-time workflow: idle until the SBI is released (or ``length`` seconds)."""
    logger = wf.name
    length = pb["parameters"].get("length")
    started = time.time()
    db.log(pb["id"], "Real-time processing started; waiting for ReleaseResources", source=logger)
    while True:
        sbi = db.sbi(pb["sbi_id"])
        if sbi is None or sbi.get("status") == "RELEASED":
            db.log(pb["id"], "SBI released: ending real-time processing", source=logger)
            return EXIT_OK
        if length is not None and time.time() - started >= float(length):
            db.log(pb["id"], f"Real-time processing ended after {length} s", source=logger)
            return EXIT_OK
        time.sleep(0.2)


def run_sleep(db: ConfigDB, pb: dict[str, Any], wf: Workflow) -> int:
    """SDP's test batch workflow: wait ``duration`` seconds, then end."""
    duration = float(pb["parameters"].get("duration", 0.0))
    db.log(pb["id"], f"Test batch processing for {duration:g} s", source=wf.name)
    time.sleep(duration)
    return EXIT_OK


def run_batch(db: ConfigDB, pb: dict[str, Any], wf: Workflow, workdir: str, buffer_root: str, resume: bool) -> int:
    """Run the workflow's recipe with the PB's parameters; store the run id on the PB.

    With an ``s3://`` buffer root the recipe runs on a local staging copy of the buffers
    (casacore writes Measurement Sets only to local tables) and every buffer is copied to its
    prefix when the run ends, finished or not; the staging copy is removed once the PB finished.
    """
    if is_remote(buffer_root):
        stage = stage_dir(workdir, pb["id"])
        stage.mkdir(parents=True, exist_ok=True)
        db.log(pb["id"], f"Staging buffers in {stage} (object storage holds no Measurement Set tables)",
               source=wf.name)
        code = EXIT_FAILED
        try:
            code = _run_recipe(db, pb, wf, workdir, str(stage), resume)
        finally:
            _upload_buffers(db, pb, stage, wf.name)
        if code == EXIT_OK:
            shutil.rmtree(stage, ignore_errors=True)
        return code
    return _run_recipe(db, pb, wf, workdir, buffer_root, resume)


def _upload_buffers(db: ConfigDB, pb: dict[str, Any], stage: Path, logger: str) -> None:
    """Copy each staged buffer directory to its reservation's ``s3://`` prefix."""
    for res in db.buffers():
        src = stage / res["name"]
        if res["pb_id"] != pb["id"] or not src.is_dir() or not is_remote(res["location"]):
            continue
        name, dest = res["name"], Location.parse(res["location"])
        files = [f for f in src.rglob("*") if f.is_file()]
        db.log(pb["id"], f"Copying buffer {name} to {dest.url} ({len(files)} files, "
                         f"{human(sum(f.stat().st_size for f in files))})", source=logger)
        dest.upload(src)


def _run_recipe(db: ConfigDB, pb: dict[str, Any], wf: Workflow, workdir: str, buffer_root: str, resume: bool) -> int:
    from ...run.api import prepare_run

    logger = wf.name
    prepared = prepare_run(recipe_args(wf, pb, buffer_root), workdir=workdir)
    prepared.options.resume = resume
    prepared.options.argv = ["radioflow", "sdp", "pb", pb["id"]]
    n_workers = pb["parameters"].get("n_workers", 4)
    db.log(pb["id"], f"Deploying Dask EE ({n_workers} workers)", source=logger)
    runner = prepared.runner(progress=PBProgress(db, pb["id"], logger))

    def add_run(p: dict[str, Any]) -> dict[str, Any]:
        p["run_ids"] = [*p.get("run_ids", []), runner.run_id]
        return p

    db.update_pb(pb["id"], add_run)
    db.log(pb["id"], f"radioflow run {runner.run_id}" + (" (resuming completed steps)" if resume else ""),
           source=logger)
    try:
        outcome = runner.run()
    finally:
        db.log(pb["id"], "Removing Dask EE", source=logger)
    for key, value in outcome.outputs.items():
        db.log(pb["id"], f"output {key} = {value}", source=logger)
    return EXIT_OK if outcome.status == "ok" else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point of the PB process; the exit code tells the controller FINISHED (0) or FAILED."""
    ap = argparse.ArgumentParser(prog="radioflow.ops.sdp.execute")
    ap.add_argument("pb_id")
    ap.add_argument("--store", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--buffer-root", required=True)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    if os.getpgrp() == os.getpid():   # started by a controller in a group of its own
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    db = open_store(args.store, workdir=args.workdir)
    pb = db.require_pb(args.pb_id)
    try:
        wf = lookup(pb["kind"], pb["workflow"], pb["version"])
        if wf.action == "until_released":
            return run_realtime(db, pb, wf)
        if wf.action == "sleep":
            return run_sleep(db, pb, wf)
        return run_batch(db, pb, wf, args.workdir, args.buffer_root, args.resume)
    except (RadioflowError, LookupError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        db.update_pb(pb["id"], lambda p: {**p, "error": reason})
        db.log(pb["id"], reason, source=pb["workflow"], level="ERROR")
        return EXIT_FAILED
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
