"""What a run leaves behind: run and step rows, step log footers, step reports, console lines.

Rows go to ``.radioflow/runs.db`` (:class:`~.records.RunRecords`) with secret-looking values
redacted; a cab step's log ``.radioflow/logs/<run>/<step>.log`` ends with its resolved
parameters, outputs and status. Step rows started but not finished are closed as failed or
interrupted when the run stops early.
"""
from __future__ import annotations

import dataclasses
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError
from ..invoke import Result
from ..invoke.markers import SUMMARY_MARK
from ..recipe.validate import StepDef
from .costs import PriceModel
from .progress import Progress
from .records import RunRecords

_SAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")


@dataclass
class StepReport:
    """One step's end: its full name, status (ok, failed, skipped, resumed), time and error."""

    fqname: str
    status: str
    seconds: float = 0.0
    error: str | None = None


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values with secret-looking names (key, token, password, ...) replaced by '***'."""
    from ..secrets import is_secret

    return {k: "***" if is_secret(k) else v for k, v in values.items()}


def append_footer(path: str, params: Mapping[str, Any], outputs: Mapping[str, Any], ok: bool,
                  returncode: int, seconds: float) -> None:
    """End a step log with its resolved parameters, outputs and status (secrets shown as ***)."""
    from ..secrets import is_secret, redact_text, secret_values

    values = secret_values()

    def show(d: Mapping[str, Any]) -> str:
        text = "\n".join(f"#   {k} = {'***' if is_secret(k) else repr(v)}" for k, v in d.items()) or "#   (none)"
        return redact_text(text, values)

    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"# resolved parameters:\n{show(params)}\n# outputs:\n{show(outputs)}\n"
                     f"# status: {'ok' if ok else 'failed'}, exit status {returncode}, {seconds:.3f} s\n")
    except OSError:
        pass


class Recorder:
    """Records of one run (none when ``enabled`` is false), its step reports and step log paths."""

    def __init__(self, workdir: str, run_id: str, progress: Progress, *, enabled: bool = True,
                 prices: PriceModel | None = None) -> None:
        self.workdir = workdir
        self.prices = prices or PriceModel()
        self.run_id = run_id
        self.progress = progress
        self.enabled = enabled
        self.records: RunRecords | None = None
        self.reports: list[StepReport] = []
        self.log_dir = Path(workdir, ".radioflow", "logs", run_id)
        self._open: set[int] = set()     # step rows started but not finished

    def start_run(self, recipe: str, files: list[str], argv: list[str]) -> None:
        """Open ``runs.db`` and add the run's row; a clear error when it cannot be written."""
        if not self.enabled:
            return
        db = Path(self.workdir, ".radioflow", "runs.db")
        try:
            self.records = RunRecords(db)
            self.records.start_run(self.run_id, recipe, files, argv, self.workdir,
                                   prices=dataclasses.asdict(self.prices))
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"Cannot write run records to {db}: {exc}.") from None

    def abandon_open(self, status: str, error: str | None) -> None:
        """Close step rows started but not finished (the run failed or was interrupted)."""
        if self.records is not None:
            for record_id in sorted(self._open):
                self.records.finish_step(record_id, status, error=error)
        self._open.clear()

    def finish_run(self, status: str, error: str | None) -> None:
        """Set the run row's status and close the database."""
        if self.records is not None:
            self.records.finish_run(self.run_id, status, error)
            self.records.close()

    def log_path(self, fqname: str) -> str:
        """The log file of step ``fqname`` (its name made safe for a file system)."""
        return str(self.log_dir / f"{_SAFE.sub('_', fqname)}.log")

    def start_step(self, fqname: str, cab: str, values: Mapping[str, Any], phash: str,
                   log_path: str) -> int | None:
        """Add a running step's row; its id (None when not recording)."""
        if self.records is None:
            return None
        record_id = self.records.start_step(self.run_id, fqname, cab, redacted(values), phash, log_path)
        self._open.add(record_id)
        return record_id

    def cab_finished(self, record_id: int | None, log_path: str | None, params: Mapping[str, Any],
                     outputs: Mapping[str, Any], res: Result, ok: bool, error: str | None,
                     seconds: float, fingerprints: Mapping[str, Any] | None = None) -> None:
        """A cab step ended: its log footer, its row finished, its summary lines on the console."""
        if log_path:
            append_footer(log_path, params, outputs, ok, res.returncode, seconds)
        if self.records is not None and record_id is not None:
            command = next((ln[2:] for ln in res.log.splitlines() if ln.startswith(("# command: ", "# call: "))), None)
            self.records.finish_step(record_id, "ok" if ok else "failed", outputs=redacted(outputs),
                                     returncode=res.returncode, error=error, started=res.started,
                                     finished=res.finished, command=command, output=res.log,
                                     fingerprints=fingerprints if ok else None, usage=self.accounting(res))
            self._open.discard(record_id)
        for line in res.log.splitlines():  # a cab's progress summaries (radioflow.cabs say()) reach the console
            if line.startswith(SUMMARY_MARK):
                self.progress.message(f"  {line[len(SUMMARY_MARK):].strip()}")

    def accounting(self, res: Result) -> dict[str, float | None]:
        """A cab step's record columns from its Result's usage: measured values, GB-s and cost."""
        usage = res.usage or {}
        return {"cpu_seconds": usage.get("cpu_seconds"), "peak_memory": usage.get("peak_memory"),
                "bytes_read": usage.get("bytes_read"), "bytes_written": usage.get("bytes_written"),
                "invocations": usage.get("invocations", 1.0), "gb_seconds": self.prices.gb_seconds(usage),
                "cost": self.prices.cost(usage)}

    def step_done(self, fqname: str, sdef: StepDef, status: str, seconds: float, params: Mapping[str, Any], *,
                  phash: str = "", outputs: Mapping[str, Any] | None = None, note: str = "",
                  resumed_from: str | None = None, recorded: bool = False) -> None:
        """A step ended: its row (unless ``recorded`` already), its report and its console line."""
        if self.records is not None and not recorded:
            cab = sdef.cab_name if sdef.cab is not None else f"recipe:{sdef.recipe.name if sdef.recipe else ''}"
            usage = self.records.usage_under(self.run_id, fqname) if sdef.recipe is not None else None
            self.records.record_step(self.run_id, fqname, cab, status, redacted(params), phash,
                                     outputs=redacted(outputs or {}), usage=usage,
                                     error=note if status == "failed" else None, resumed_from=resumed_from,
                                     started=time.time() - seconds, finished=time.time())
        self.reports.append(StepReport(fqname, status, seconds, note if status == "failed" else None))
        self.progress.step_finished(fqname, status, seconds, note if status != "failed" else "")


__all__ = ["Recorder", "StepReport", "append_footer", "redacted"]
